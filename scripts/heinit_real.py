"""Paper C at initialization on real images (rule heinit_real)."""
import time

from repro.gpus import job_device
from repro.heinit.measure import load_real_inputs, run_sweep, write_sweep
from repro.jobs import start_job

log = start_job(snakemake)
settings = snakemake.params.settings
real = settings["real"]
X = load_real_inputs(real["dataset"], real["n_samples"], seed=settings["seeds"][0],
                     data_root=snakemake.params.data_root, download=snakemake.params.download)
log.info("%s: %d inputs of dimension %d; settings %s", real["dataset"], *X.shape, settings)
start = time.perf_counter()
with job_device(snakemake) as device:  # claims a free GPU when the job asks for gpu >= 1
    frame = run_sweep("real", settings, str(device), X_real=X, real_name=real["dataset"])
write_sweep(frame, snakemake.output[0])
log.info("%d rows in %.1f s", len(frame), time.perf_counter() - start)
