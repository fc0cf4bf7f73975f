"""Collect every paper's claims into one verdict table (rule claims), judged at this
configuration's scale (docs/CLAIMS.md section 2)."""
from repro.claims import collect, judge_at_scale, write_claims
from repro.jobs import start_job

start_job(snakemake)
table = judge_at_scale(collect(snakemake.input), snakemake.params.scale)
write_claims(table, snakemake.output.csv, snakemake.output.md)
