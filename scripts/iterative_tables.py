"""Paper A: every run's measurements -> tidy tables and Table 1 (rule iterative_tables)."""
from pathlib import Path

from repro.iterative.measure import run_record
from repro.iterative.plan import MODEL_TABLES, SNAPSHOT_TABLES
from repro.iterative.tables import aggregate
from repro.jobs import start_job

log = start_job(snakemake)
per_run = {name: list(snakemake.input[name]) for name in MODEL_TABLES + SNAPSHOT_TABLES}
records = [run_record(cfg) for cfg in snakemake.params.runs]  # parameter counts: here, not at DAG build
aggregate(per_run, list(snakemake.input.histories), list(snakemake.input.statuses), records,
          out_dir=Path(snakemake.output.table1_tex).parent)
