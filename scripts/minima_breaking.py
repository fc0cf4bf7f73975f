"""Breaking point of the eta/S scaling per train size: table, Markdown and figure (rule minima_breaking)."""
from repro.jobs import start_job
from repro.minima.figures import plot_breaking
from repro.minima.tables import write_breaking

log = start_job(snakemake)
o, tolerance = snakemake.output, snakemake.params.settings["tolerance"]
runs, summary = write_breaking(list(snakemake.input.status), snakemake.params.experiments, tolerance, o.csv, o.md, o.runs)
plot_breaking(runs, summary, tolerance, o.png)
log.info("\n%s", summary.to_string(index=False) if len(summary) else "no breaking-point runs")
