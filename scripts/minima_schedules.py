"""Schedule swap: final-accuracy table, curves and figure (rule minima_schedules)."""
from repro.jobs import start_job
from repro.minima.figures import plot_schedules
from repro.minima.tables import write_schedule_tables

start_job(snakemake)
out = snakemake.output
finals, curves = write_schedule_tables(snakemake.input.status, snakemake.input.history,
                                       snakemake.params.experiments, out.csv, out.md, out.curves)
plot_schedules(curves, out.png)
