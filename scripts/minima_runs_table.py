"""Per-run summary of the sharpness runs: tidy CSV + Markdown (rule minima_runs_table)."""
import json
from pathlib import Path

from repro.jobs import start_job
from repro.minima_analysis import write_runs_table

log = start_job(snakemake)
results = [json.loads(Path(p).read_text()) for p in snakemake.input]
table = write_runs_table(results, snakemake.params.experiments, snakemake.output.csv, snakemake.output.md)
log.info("%d runs, %d rows", len(results), len(table))
