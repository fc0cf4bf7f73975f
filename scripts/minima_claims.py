"""Claims B1-B4 of paper B from the run and schedule tables (rule minima_claims)."""
from repro.jobs import start_job
from repro.minima_analysis import write_claims

log = start_job(snakemake)
frame = write_claims(snakemake.input.runs, snakemake.input.schedules, snakemake.output[0])
log.info("\n%s", frame[["id", "value", "verdict"]].to_string(index=False))
