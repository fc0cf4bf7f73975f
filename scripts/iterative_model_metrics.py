"""Paper A: block measurements of one run's final model (rule iterative_model_metrics)."""
from repro.gpus import job_device
from repro.iterative.measure import run_model_metrics
from repro.iterative.plan import MODEL_TABLES
from repro.jobs import start_job

log = start_job(snakemake)
with job_device(snakemake) as device:  # claims a free GPU when the job asks for gpu >= 1
    run_model_metrics(snakemake.input.model, snakemake.input.status, snakemake.params.run, snakemake.params.settings,
                      outputs={name: snakemake.output[name] for name in MODEL_TABLES},
                      device=device, data_root=snakemake.params.data_root,
                      download=snakemake.params.download, log=log)
