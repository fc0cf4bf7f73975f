"""Per-layer, summary, paper-setting and Glorot-slope tables of paper C (rule heinit_tables)."""
from repro.heinit.tables import build_tables
from repro.jobs import start_job

log = start_job(snakemake)
frames = build_tables(list(snakemake.input), dict(snakemake.output.items()))
log.info("summary:\n%s", frames["summary"].to_string())
