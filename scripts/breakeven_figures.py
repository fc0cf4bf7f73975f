"""Figures of paper D (rule breakeven_figures)."""
from repro.breakeven.figures import make_figures
from repro.jobs import start_job

start_job(snakemake)
out = snakemake.output
make_figures(snakemake.input.trajectories, snakemake.input.maxima, snakemake.input.runs,
             dict(trajectories=out.trajectories, early=out.early, bn=out.bn, extra=out.extra))
