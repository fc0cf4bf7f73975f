"""Paper A: block measurements of one run's final model (rule iterative_model_metrics)."""
from repro.iterative_analysis import MODEL_TABLES, run_model_metrics
from repro.jobs import start_job
from repro.train import resolve_device

log = start_job(snakemake)
run_model_metrics(snakemake.input.model, snakemake.input.status, snakemake.params.run, snakemake.params.settings,
                  outputs={name: snakemake.output[name] for name in MODEL_TABLES},
                  device=resolve_device(snakemake.params.device), data_root=snakemake.params.data_root,
                  download=snakemake.params.download, log=log)
