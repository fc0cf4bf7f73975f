"""Paper A: sharing diagnostics at initialisation, no training (rule iterative_sharing_init, claim A4a)."""
from repro.iterative.measure import run_sharing_init
from repro.jobs import start_job

log = start_job(snakemake)
frame = run_sharing_init(snakemake.params.run, snakemake.params.sharing, snakemake.params.settings,
                         snakemake.output[0], data_root=snakemake.params.data_root,
                         download=snakemake.params.download)
log.info("sharing_init: %d rows", len(frame))
