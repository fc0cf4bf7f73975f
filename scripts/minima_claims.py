"""Claims B1-B7 of paper B from the run, schedule, memorization, breaking and interpolation
tables (rule minima_claims)."""
from repro.jobs import start_job
from repro.minima.claims import write_claims

log = start_job(snakemake)
i = snakemake.input
frame = write_claims(i.runs, i.schedules, snakemake.output[0], memorization_csv=i.memorization,
                     breaking_runs_csv=i.breaking_runs, interpolation_csv=i.interpolation,
                     side_offset=snakemake.params.side_offset, tolerance=snakemake.params.tolerance)
log.info("\n%s", frame[["id", "value", "verdict"]].to_string(index=False))
