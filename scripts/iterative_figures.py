"""Paper A: figures from the tidy tables (rule iterative_figures)."""
from pathlib import Path

from repro.iterative.figures import make_figures
from repro.iterative.tables import read_tables
from repro.jobs import start_job

log = start_job(snakemake)
make_figures(read_tables(Path(snakemake.input[0]).parent), out_dir=Path(snakemake.output.cosine).parent)
