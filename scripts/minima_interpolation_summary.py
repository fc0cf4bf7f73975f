"""All interpolation pairs: one tidy table + Markdown + figure (rule minima_interpolation_summary)."""
from repro.jobs import start_job
from repro.minima.figures import plot_interpolation
from repro.minima.tables import write_interpolation_table

start_job(snakemake)
out = snakemake.output
table = write_interpolation_table(list(snakemake.input), out.csv, out.md)
plot_interpolation(table, out.png)
