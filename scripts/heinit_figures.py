"""Figures of paper C, PNG + PDF each (rule heinit_figures)."""
from repro.heinit.figures import make_figures
from repro.heinit.tables import read_per_layer
from repro.jobs import start_job

log = start_job(snakemake)
paths = make_figures(read_per_layer(snakemake.input[0]), snakemake.params.out_dir)
log.info("wrote %s", paths)
