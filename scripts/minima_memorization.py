"""Memorization with random labels: table, Markdown and figure (rule minima_memorization)."""
from repro.jobs import start_job
from repro.minima_analysis import write_memorization

log = start_job(snakemake)
i, o = snakemake.input, snakemake.output
table = write_memorization(list(i.status), list(i.history), snakemake.params.experiments,
                           snakemake.params.settings["level"], o.csv, o.md, o.png, o.pdf)
log.info("%d memorization runs", table.run.nunique() if len(table) else 0)
