"""Sharpness (lambda_max, Tr H) of one trained run at its matched train loss (rule minima_sharpness)."""
from repro.gpus import job_device
from repro.jobs import start_job
from repro.minima.measure import sharpness_job

log = start_job(snakemake)
p = snakemake.params
with job_device(snakemake) as device:  # claims a free GPU when the job asks for gpu >= 1
    result = sharpness_job(snakemake.input.model, snakemake.input.status, snakemake.output[0], p.settings,
                           p.data, p.data_root, p.download, device)
log.info("%s/%s: status %s, lambda_max %s, Tr(H) %s", result["experiment"], result["run"], result["status"],
         result["sharpness"]["lambda_max"], result["sharpness"]["hessian_trace"])
