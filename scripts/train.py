"""Train one run (rule train)."""
from repro.data import load_dataset
from repro.gpus import job_device
from repro.jobs import start_job
from repro.train import train_run

log = start_job(snakemake)
spec = snakemake.params.spec
with job_device(snakemake) as device:  # claims a free GPU when the job asks for gpu >= 1
    log.info("run %s on %s", snakemake.wildcards.run, device)
    data = load_dataset(spec["dataset"], snakemake.params.data_root, snakemake.params.download,
                        test_fraction=spec.get("test_fraction", 0.2), train_size=spec.get("train_size"))
    result = train_run(spec, data, out_dir=snakemake.output.model.rsplit("/", 1)[0],
                       ckpt_dir=snakemake.params.checkpoints, device=device,
                       snapshot_epochs=snakemake.params.snapshot_epochs)
log.info("finished: %s (%s)", result["status"], result["stop_reason"])
