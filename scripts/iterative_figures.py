"""Paper A: figures from the tidy tables (rule iterative_figures)."""
from pathlib import Path

from repro.iterative_analysis import read_tables
from repro.iterative_plots import make_figures
from repro.jobs import start_job

log = start_job(snakemake)
make_figures(read_tables(Path(snakemake.input[0]).parent), out_dir=Path(snakemake.output.cosine).parent)
