"""Curvature metrics of every snapshot of one run (rule breakeven_curvature)."""
from repro.breakeven.measure import measure_run_file
from repro.gpus import job_device
from repro.jobs import start_job
from repro.train import snapshot_name

log = start_job(snakemake)
w = snakemake.wildcards
with job_device(snakemake) as device:  # claims a free GPU when the job asks for gpu >= 1
    log.info("%s/%s on %s", w.experiment, w.run, device)
    measure_run_file(snakemake.input.snapshots, [snapshot_name(e) for e in snakemake.params.epochs],
                     snakemake.input.status, snakemake.input.probe, snakemake.params.measure, snakemake.output[0],
                     device=device, ids=dict(experiment=w.experiment, run=w.run), log=log)
