"""The papers' numbers beside ours (rule paper_comparison)."""
from repro.jobs import start_job
from repro.paper_comparison import write_comparison

log = start_job(snakemake)
tables = {name: path for name, path in snakemake.input.items() if name != "paper_config"}
table = write_comparison(tables, snakemake.params.enabled, snakemake.output.csv, snakemake.output.md,
                         paper_config=snakemake.input.get("paper_config"))
log.info("%d rows: %s", len(table), table["scale"].value_counts().to_dict())
