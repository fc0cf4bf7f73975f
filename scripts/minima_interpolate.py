"""Loss/accuracy along the line between two trained runs (rule minima_interpolate)."""
from repro.gpus import job_device
from repro.jobs import start_job
from repro.minima.measure import interpolation_job

log = start_job(snakemake)
p, i = snakemake.params, snakemake.input
with job_device(snakemake) as device:  # claims a free GPU when the job asks for gpu >= 1
    table = interpolation_job(snakemake.wildcards.pair,
                              {"model": i.a_model, "status": i.a_status, "data": p.pair["data"]},
                              {"model": i.b_model, "status": i.b_status, "data": p.pair["data"]},
                              p.settings, snakemake.output[0], p.data_root, p.download, device,
                              group=p.pair["group"], label=p.pair["label"])
log.info("pair %s: %s -> %s, %d rows", snakemake.wildcards.pair, p.pair["a"], p.pair["b"], len(table))
