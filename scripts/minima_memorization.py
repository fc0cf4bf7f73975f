"""Memorization with random labels: table, Markdown and figure (rule minima_memorization)."""
from repro.jobs import start_job
from repro.minima.figures import plot_memorization
from repro.minima.tables import write_memorization

log = start_job(snakemake)
i, o = snakemake.input, snakemake.output
table, curves = write_memorization(list(i.status), list(i.history), snakemake.params.experiments,
                                   snakemake.params.settings["level"], o.csv, o.md)
plot_memorization(table, curves, o.png)
log.info("%d memorization runs", table.run.nunique() if len(table) else 0)
