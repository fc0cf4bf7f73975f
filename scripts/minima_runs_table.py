"""Per-run summary of the sharpness runs: tidy CSV + Markdown (rule minima_runs_table)."""
from repro.jobs import start_job
from repro.minima.tables import write_runs_table

log = start_job(snakemake)
table = write_runs_table(list(snakemake.input), snakemake.params.experiments, snakemake.output.csv,
                         snakemake.output.md)
log.info("%d runs, %d rows", len(table[["experiment", "run"]].drop_duplicates()), len(table))
