"""One Gaussian-input sweep of paper C at initialization (rule heinit_sweep)."""
import time

from repro import heinit_analysis as A
from repro.jobs import start_job

log = start_job(snakemake)
sweep = snakemake.wildcards.sweep
log.info("sweep %s, settings %s, device %s", sweep, snakemake.params.settings, snakemake.params.device)
start = time.perf_counter()
frame = A.run_sweep(sweep, snakemake.params.settings, snakemake.params.device)
A.write_sweep(frame, snakemake.output[0])
log.info("%d rows in %.1f s", len(frame), time.perf_counter() - start)
