"""Fixed probe subsets of one breakeven experiment's training set (rule breakeven_probe)."""
from repro.breakeven.measure import make_probe_file
from repro.jobs import start_job

log = start_job(snakemake)
payload = make_probe_file(snakemake.params.dataset, snakemake.params.probe, snakemake.output[0],
                          data_root=snakemake.params.data_root, download=snakemake.params.download)
log.info("probe of %s: %d stored examples of %d (settings %s)", snakemake.wildcards.experiment,
         len(payload["y"]), payload["n_train"], snakemake.params.probe)
