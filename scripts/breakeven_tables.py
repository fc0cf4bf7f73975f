"""Trajectory, run, maxima and cost tables of paper D (rule breakeven_tables)."""
from repro.breakeven.tables import build_tables
from repro.jobs import start_job

log = start_job(snakemake)
frames = build_tables(snakemake.input.metrics, snakemake.input.status, snakemake.params.runs,
                      snakemake.params.reference, dict(snakemake.output.items()))
log.info("runs:\n%s", frames["runs"].to_string())
