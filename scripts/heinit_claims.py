"""Claims C1-C4 of paper C from the per-layer table (rule heinit_claims)."""
from repro.heinit.claims import write_claims
from repro.jobs import start_job

log = start_job(snakemake)
frame = write_claims(snakemake.input[0], snakemake.output[0])
log.info("claims:\n%s", frame[["id", "value", "verdict"]].to_string())
