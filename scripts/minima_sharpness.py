"""Sharpness (lambda_max, Tr H) of one trained run at its matched train loss (rule minima_sharpness)."""
from repro.jobs import start_job
from repro.minima_analysis import sharpness_job
from repro.train import resolve_device

log = start_job(snakemake)
p = snakemake.params
result = sharpness_job(snakemake.input.model, snakemake.input.status, snakemake.output[0], p.settings, p.data,
                       p.data_root, p.download, resolve_device(p.device))
log.info("%s/%s: status %s, lambda_max %s, Tr(H) %s", result["experiment"], result["run"], result["status"],
         result["sharpness"]["lambda_max"], result["sharpness"]["hessian_trace"])
