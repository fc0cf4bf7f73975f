"""Paper A: figures from the tidy tables (rule iterative_figures)."""
from pathlib import Path

import pandas as pd

from repro.iterative.figures import make_figures
from repro.iterative.tables import read_tables
from repro.jobs import start_job

log = start_job(snakemake)
tables = read_tables(Path(snakemake.input[0]).parent)
if snakemake.input.get("sharing_init"):
    tables["sharing_init"] = pd.read_csv(snakemake.input.sharing_init[0])
make_figures(tables, out_dir=Path(snakemake.output.cosine).parent)
