"""Loss/accuracy along the line between two trained runs (rule minima_interpolate)."""
from repro.io import atomic_write_text
from repro.jobs import start_job
from repro.minima_analysis import interpolate_pair
from repro.gpus import job_device

log = start_job(snakemake)
p, i = snakemake.params, snakemake.input
with job_device(snakemake) as device:  # claims a free GPU when the job asks for gpu >= 1
    table = interpolate_pair(snakemake.wildcards.pair,
                             {"model": i.a_model, "status": i.a_status, "data": p.pair["data"]},
                             {"model": i.b_model, "status": i.b_status, "data": p.pair["data"]},
                             p.settings, p.data_root, p.download, device, group=p.pair["group"])
atomic_write_text(snakemake.output[0], table.to_csv(index=False))
log.info("pair %s: %s -> %s, %d rows", snakemake.wildcards.pair, p.pair["a"], p.pair["b"], len(table))
