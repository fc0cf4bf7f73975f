"""Figures of paper C, PNG + PDF each (rule heinit_figures)."""
from repro import heinit_analysis as A
from repro.jobs import start_job

log = start_job(snakemake)
paths = A.make_figures(A.read_per_layer(snakemake.input[0]), snakemake.params.out_dir)
log.info("wrote %s", paths)
