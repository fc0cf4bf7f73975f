"""One Gaussian-input sweep of paper C at initialization (rule heinit_sweep)."""
import time

from repro.gpus import job_device
from repro.heinit.measure import run_sweep, write_sweep
from repro.jobs import start_job

log = start_job(snakemake)
sweep = snakemake.wildcards.sweep
with job_device(snakemake) as device:  # claims a free GPU when the job asks for gpu >= 1
    log.info("sweep %s, settings %s, device %s", sweep, snakemake.params.settings, device)
    start = time.perf_counter()
    frame = run_sweep(sweep, snakemake.params.settings, str(device))
write_sweep(frame, snakemake.output[0])
log.info("%d rows in %.1f s", len(frame), time.perf_counter() - start)
