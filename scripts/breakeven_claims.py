"""Claims D1-D3 of paper D (rule breakeven_claims)."""
from repro.breakeven.claims import write_claims
from repro.jobs import start_job

log = start_job(snakemake)
frame = write_claims(snakemake.input.maxima, snakemake.input.runs, snakemake.output[0])
log.info("claims:\n%s", frame.to_string())
