# Paper D, the break-even point (issue 7): curvature along every trajectory of the
# breakeven_* experiments, one cached job per run (all its snapshots); tables, figures, claims.
from repro.breakeven.plan import (
    dataset_spec,
    experiment_settings,
    measure_params,
    metric_paths,
    probe_params,
    run_rows,
)

# settings: validated once in common.smk (repro.settings; `analysis:` overrides included)

BREAKEVEN = f"{RESULTS}/metrics/breakeven"
BREAKEVEN_TABLES = f"{RESULTS}/tables/breakeven"
BREAKEVEN_FIGURES = f"{RESULTS}/figures/breakeven"
BREAKEVEN_REPORT = CATEGORIES["breakeven"]
BREAKEVEN_RUN = run_dir("{experiment}", "{run}")
BREAKEVEN_EXPERIMENTS = sorted({e for e, _ in runs_of(paper="breakeven")})
try:
    BREAKEVEN_SETTINGS = {
        e: experiment_settings(
            config["breakeven"],
            config["experiments"][e].get("analysis"),
            where=f"experiments.{e}.analysis",
        )
        for e in BREAKEVEN_EXPERIMENTS
    }
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration: {error}") from None


rule breakeven_probe:
    output:
        f"{BREAKEVEN}/{{experiment}}/probe.pt",
    log:
        f"{RESULTS}/logs/breakeven/probe/{{experiment}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/breakeven/probe/{{experiment}}.tsv"
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
        gpu=0,
    params:
        dataset=lambda wildcards: dataset_spec(RUNS, wildcards.experiment),
        probe=lambda wildcards: probe_params(BREAKEVEN_SETTINGS[wildcards.experiment]),
        data_root=config["data_root"],
        download=config["download"],
    script:
        "../scripts/breakeven_probe.py"


# One job per run, not per snapshot: a job's start costs ~3 s (Python, torch, pandas),
# most of a snapshot's measurement at the default scale (docs/PERFORMANCE.md "Paper D").
rule breakeven_curvature:
    input:
        snapshots=f"{BREAKEVEN_RUN}/snapshots",
        status=f"{BREAKEVEN_RUN}/status.json",
        probe=f"{BREAKEVEN}/{{experiment}}/probe.pt",
    output:
        f"{BREAKEVEN}/{{experiment}}/{{run}}.json",
    log:
        f"{RESULTS}/logs/breakeven/curvature/{{experiment}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/breakeven/curvature/{{experiment}}/{{run}}.tsv"
    conda:
        "../envs/repro.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        # minutes: repro.costs (Lanczos, covariance and accuracy passes per snapshot)
        runtime=lambda wildcards, attempt: costs.measure_runtime_min(
            RUNS[(wildcards.experiment, wildcards.run)],
            costs.curvature_passes(
                BREAKEVEN_SETTINGS[wildcards.experiment],
                costs.train_images(RUNS[(wildcards.experiment, wildcards.run)]),
                len(get_snapshot_epochs(wildcards)),
            ),
            attempt,
        ),
        gpu=lambda wildcards: BREAKEVEN_SETTINGS[wildcards.experiment]["gpu"],
    params:
        epochs=get_snapshot_epochs,
        measure=lambda wildcards: measure_params(
            BREAKEVEN_SETTINGS[wildcards.experiment]
        ),
        device=config["device"],
    script:
        "../scripts/breakeven_curvature.py"


rule breakeven_tables:
    input:
        metrics=metric_paths(runs_of(paper="breakeven"), BREAKEVEN),
        status=get_trained("breakeven"),
    output:
        trajectories=f"{BREAKEVEN_TABLES}/trajectories.csv",
        trajectories_md=f"{BREAKEVEN_TABLES}/trajectories.md",
        runs=f"{BREAKEVEN_TABLES}/runs.csv",
        maxima=f"{BREAKEVEN_TABLES}/maxima.csv",
        maxima_md=report(
            f"{BREAKEVEN_TABLES}/maxima.md",
            caption="../report/breakeven_maxima.rst",
            category=BREAKEVEN_REPORT,
            subcategory="Tables",
        ),
        cost=f"{BREAKEVEN_TABLES}/cost.csv",
    log:
        f"{RESULTS}/logs/breakeven/tables.log",
    benchmark:
        f"{RESULTS}/benchmarks/breakeven/tables.tsv"
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    params:
        runs=lambda wildcards: run_rows(
            RUNS, runs_of(paper="breakeven"), BREAKEVEN_SETTINGS, snapshot_epochs
        ),
        reference=config["breakeven"]["paper_reference"],
    script:
        "../scripts/breakeven_tables.py"


rule breakeven_figures:
    input:
        trajectories=f"{BREAKEVEN_TABLES}/trajectories.csv",
        maxima=f"{BREAKEVEN_TABLES}/maxima.csv",
        runs=f"{BREAKEVEN_TABLES}/runs.csv",
    output:
        trajectories=report(
            f"{BREAKEVEN_FIGURES}/trajectories.png",
            caption="../report/breakeven_trajectories.rst",
            category=BREAKEVEN_REPORT,
            subcategory="Trajectories",
        ),
        trajectories_pdf=f"{BREAKEVEN_FIGURES}/trajectories.pdf",
        early=report(
            f"{BREAKEVEN_FIGURES}/early_phase.png",
            caption="../report/breakeven_early_phase.rst",
            category=BREAKEVEN_REPORT,
            subcategory="Early phase",
        ),
        early_pdf=f"{BREAKEVEN_FIGURES}/early_phase.pdf",
        bn=report(
            f"{BREAKEVEN_FIGURES}/bn.png",
            caption="../report/breakeven_bn.rst",
            category=BREAKEVEN_REPORT,
            subcategory="Batch normalisation",
        ),
        bn_pdf=f"{BREAKEVEN_FIGURES}/bn.pdf",
        extra=report(
            f"{BREAKEVEN_FIGURES}/extra.png",
            caption="../report/breakeven_extra.rst",
            category=BREAKEVEN_REPORT,
            subcategory="Trajectories",
        ),
        extra_pdf=f"{BREAKEVEN_FIGURES}/extra.pdf",
    log:
        f"{RESULTS}/logs/breakeven/figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/breakeven/figures.tsv"
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    script:
        "../scripts/breakeven_figures.py"


rule breakeven_claims:
    input:
        maxima=f"{BREAKEVEN_TABLES}/maxima.csv",
        runs=f"{BREAKEVEN_TABLES}/runs.csv",
    output:
        f"{RESULTS}/claims/breakeven.csv",
    log:
        f"{RESULTS}/logs/breakeven/claims.log",
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
        gpu=0,
    script:
        "../scripts/breakeven_claims.py"


# Built only when the configuration has breakeven_* experiments (paper_enabled in common.smk).
PAPER_TARGETS["breakeven"] = [
    *rules.breakeven_tables.output,
    *rules.breakeven_figures.output,
    *rules.breakeven_claims.output,
]
CLAIM_PAPERS.append("breakeven")
