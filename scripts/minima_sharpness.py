"""Sharpness (lambda_max, Tr H) of each trained run of a part at its matched train loss (rule minima_sharpness)."""
from repro.gpus import job_device
from repro.jobs import start_job
from repro.minima.measure import sharpness_job

log = start_job(snakemake)
p, i = snakemake.params, snakemake.input
with job_device(snakemake) as device:  # claims a free GPU when the job asks for gpu >= 1
    results = sharpness_job(i.models, i.statuses, p.data, snakemake.output[0], p.settings, p.data_root, p.download,
                            device)
for result in results:
    log.info("%s/%s: status %s, lambda_max %s, Tr(H) %s", result["experiment"], result["run"], result["status"],
             result["sharpness"]["lambda_max"], result["sharpness"]["hessian_trace"])
