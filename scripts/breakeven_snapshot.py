"""Curvature metrics of one snapshot (rule breakeven_snapshot)."""
from pathlib import Path

from repro.breakeven_analysis import measure_snapshot_file
from repro.jobs import start_job
from repro.train import resolve_device

log = start_job(snakemake)
w = snakemake.wildcards
record = measure_snapshot_file(Path(snakemake.input.snapshots) / f"{w.snapshot}.pt", snakemake.input.status,
                               snakemake.input.probe, snakemake.params.measure, snakemake.output[0],
                               device=resolve_device(snakemake.params.device),
                               ids=dict(experiment=w.experiment, run=w.run))
log.info("%s/%s/%s: %s %s cost %s", w.experiment, w.run, w.snapshot, record["status"],
         record["reason"] or record["metrics"], record["cost"])
