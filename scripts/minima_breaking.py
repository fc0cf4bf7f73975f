"""Breaking point of the eta/S scaling per train size: table, Markdown and figure (rule minima_breaking)."""
from repro.jobs import start_job
from repro.minima_analysis import write_breaking

log = start_job(snakemake)
o = snakemake.output
summary = write_breaking(list(snakemake.input.status), snakemake.params.experiments,
                         snakemake.params.settings["tolerance"], o.csv, o.md, o.png, o.pdf)
log.info("\n%s", summary.to_string(index=False) if len(summary) else "no breaking-point runs")
