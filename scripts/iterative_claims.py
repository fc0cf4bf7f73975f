"""Paper A: claims A1-A7 tested on the tidy tables (rule iterative_claims)."""
from pathlib import Path

from repro.iterative.claims import write_claims
from repro.jobs import start_job

log = start_job(snakemake)
frame = write_claims(Path(snakemake.input[0]).parent, snakemake.output[0], snakemake.params.settings)
log.info("claims:\n%s", frame[["id", "value", "ci_low", "ci_high", "verdict"]].to_string(index=False))
