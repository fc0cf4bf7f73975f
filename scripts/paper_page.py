"""One paper's summary page for the HTML report (rule paper_page)."""
from repro.jobs import start_job
from repro.report_pages import write_paper_page

start_job(snakemake)
write_paper_page(snakemake.wildcards.paper, snakemake.input.claims, snakemake.input.comparison,
                 snakemake.input.runs, snakemake.params.settings, snakemake.output[0])
