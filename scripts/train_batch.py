"""Train the runs of one batch one after another (a rule per batch, rules/train.smk)."""
from repro.gpus import job_device
from repro.jobs import start_job
from repro.train import train_runs

log = start_job(snakemake)
with job_device(snakemake) as device:  # claims a free GPU when the job asks for gpu >= 1
    log.info("%d runs on %s", len(snakemake.params.runs), device)
    train_runs(snakemake.params.runs, snakemake.params.data_root, snakemake.params.download, device)
