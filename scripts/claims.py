"""Collect every paper's claims into one verdict table (rule claims)."""
from repro.claims import collect, write_claims
from repro.jobs import start_job

start_job(snakemake)
write_claims(collect(snakemake.input), snakemake.output.csv, snakemake.output.md)
