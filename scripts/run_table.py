"""Write the run table (rule run_table)."""
import pandas as pd

from repro.jobs import start_job
from repro.io import atomic_write_text

start_job(snakemake)
atomic_write_text(snakemake.output[0], pd.DataFrame(snakemake.params.table).to_csv(index=False))
