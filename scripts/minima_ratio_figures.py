"""Sharpness vs eta/S, accuracy vs eta/S and the (eta, S) heatmap (rule minima_ratio_figures)."""
from repro.jobs import start_job
from repro.minima.figures import plot_ratio_figures

start_job(snakemake)
plot_ratio_figures(snakemake.input[0], dict(snakemake.output.items()))
