"""Per-layer, summary, paper-setting and Glorot-slope tables of paper C (rule heinit_tables)."""
from repro import heinit_analysis as A
from repro.jobs import start_job

log = start_job(snakemake)
frames = A.build_tables(list(snakemake.input), dict(snakemake.output.items()))
log.info("summary:\n%s", frames["summary"].to_string())
