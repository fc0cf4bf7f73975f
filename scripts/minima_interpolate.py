"""Loss/accuracy along the line between the two trained runs of each pair of a part (rule minima_interpolate)."""
from repro.gpus import job_device
from repro.jobs import start_job
from repro.minima.measure import interpolation_job

log = start_job(snakemake)
p, i = snakemake.params, snakemake.input
with job_device(snakemake) as device:  # claims a free GPU when the job asks for gpu >= 1
    table = interpolation_job(p.pairs, i.models, i.statuses, snakemake.output[0], p.settings, p.data_root,
                              p.download, device)
for spec in p.pairs:
    log.info("pair %s: %s -> %s, %d rows", spec["pair"], spec["a"], spec["b"], int((table.pair == spec["pair"]).sum()))
