"""Paper A: intermediate heads over training and init diagnostics of one run (rule iterative_snapshot_metrics)."""
from repro.gpus import job_device
from repro.iterative.measure import run_snapshot_metrics
from repro.iterative.plan import SNAPSHOT_TABLES
from repro.jobs import start_job

log = start_job(snakemake)
with job_device(snakemake) as device:  # claims a free GPU when the job asks for gpu >= 1
    run_snapshot_metrics(snakemake.input.snapshots, snakemake.input.status, snakemake.params.run,
                         snakemake.params.settings, snakemake.params.epochs, snakemake.params.span,
                         outputs={name: snakemake.output[name] for name in SNAPSHOT_TABLES},
                         device=device, data_root=snakemake.params.data_root,
                         download=snakemake.params.download, log=log)
