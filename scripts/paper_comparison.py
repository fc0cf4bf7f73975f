"""The papers' numbers beside ours (rule paper_comparison)."""
from repro.jobs import start_job
from repro.paper_comparison import write_comparison

log = start_job(snakemake)
tables = {name: snakemake.input[name] for name in snakemake.input.keys()}
table = write_comparison(tables, snakemake.params.enabled, snakemake.output.csv, snakemake.output.md,
                         architectures=snakemake.params.architectures)
log.info("%d rows: %s", len(table), table["scale"].value_counts().to_dict())
