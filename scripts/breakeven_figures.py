"""Figures of paper D (rule breakeven_figures)."""
from repro.breakeven_analysis import make_figures
from repro.jobs import start_job

start_job(snakemake)
out = snakemake.output
make_figures(snakemake.input.trajectories, snakemake.input.maxima, snakemake.input.runs,
             dict(trajectories=(out.trajectories, out.trajectories_pdf), early=(out.early, out.early_pdf),
                  bn=(out.bn, out.bn_pdf), extra=(out.extra, out.extra_pdf)))
