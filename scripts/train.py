"""Train one run (rule train)."""
from repro.data import load_run_dataset
from repro.gpus import job_device
from repro.jobs import start_job
from repro.train import train_run

log = start_job(snakemake)
spec = snakemake.params.spec
with job_device(snakemake) as device:  # claims a free GPU when the job asks for gpu >= 1
    log.info("run %s on %s", snakemake.wildcards.run, device)
    data = load_run_dataset(spec, snakemake.params.data_root, snakemake.params.download)
    result = train_run(spec, data, out_dir=snakemake.output.model.rsplit("/", 1)[0],
                       ckpt_dir=snakemake.params.checkpoints, device=device,
                       snapshot_epochs=snakemake.params.snapshot_epochs)
log.info("finished: %s (%s)", result["status"], result["stop_reason"])
