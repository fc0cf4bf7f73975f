# Paper B (minima): "Three Factors Influencing Minima in SGD" (../shared/PAPERS.md, section B).
# Training (rule train) runs the eta x S grid (its diagonal is the beta ladder), the schedule
# swaps, and at medium/paper scale the label-noise (memorization) grid and the beta ladders
# per train size (breaking point); here: sharpness of every grid run at its matched train
# loss, 1-D interpolation per configured pair (seed replicates may evaluate only the six
# points of claims B7), then tables, figures and claims B1-B7. A sharpness (interpolation)
# job measures a part: minima.sharpness.runs_per_job runs of one experiment
# (minima.interpolation.pairs_per_job pairs), one file per part, one record per run; 1 at
# paper scale (one cached GPU job per run), all in one job by default (torch start-up once)
# (protocol: docs/CLAIMS.md section 4).
# Memorization and breaking outputs always exist: "not run at this scale" when the config
# has no such experiment (claims B5/B6 are then inconclusive).
# Settings: top-level `minima:` (schemas/minima.schema.yaml) and each minima_* experiment's
# `analysis:` object; both reach the jobs through params, so changing them never retrains.
import repro.minima.plan as minima_plan

# settings: validated once in common.smk (repro.settings; `analysis:` blocks included)
try:
    MINIMA = minima_plan.Workflow(config, RUNS, RESULTS, run_dir)
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration: {error}") from None

MINIMA_METRICS = f"{RESULTS}/metrics/minima"
MINIMA_TABLES = f"{RESULTS}/tables/minima"
MINIMA_FIGURES = f"{RESULTS}/figures/minima"
MINIMA_CATEGORY = CATEGORIES["minima"]
CLAIM_PAPERS.append("minima")


rule minima_sharpness:
    input:
        unpack(MINIMA.sharpness_inputs),
    output:
        f"{MINIMA_METRICS}/sharpness/{{experiment}}/{{part}}.json",
    log:
        f"{RESULTS}/logs/minima/sharpness/{{experiment}}/{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/minima/sharpness/{{experiment}}/{{part}}.tsv"
    wildcard_constraints:
        part=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    conda:
        "../envs/repro.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=MINIMA.sharpness_runtime,
        gpu=config["minima"]["gpu"],
    params:
        settings=MINIMA.sharpness_settings,
        data=MINIMA.sharpness_data,
        device=config["device"],
        data_root=config["data_root"],
        download=config["download"],
    script:
        "../scripts/minima_sharpness.py"


rule minima_interpolate:
    input:
        unpack(MINIMA.pair_inputs),
    output:
        f"{MINIMA_METRICS}/interpolation/{{part}}.csv",
    log:
        f"{RESULTS}/logs/minima/interpolation/{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/minima/interpolation/{{part}}.tsv"
    wildcard_constraints:
        part=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    conda:
        "../envs/repro.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=MINIMA.interpolation_runtime,
        gpu=config["minima"]["gpu"],
    params:
        pairs=MINIMA.pair_specs,
        settings=MINIMA.interpolation_settings,
        device=config["device"],
        data_root=config["data_root"],
        download=config["download"],
    script:
        "../scripts/minima_interpolate.py"


rule minima_runs_table:
    input:
        MINIMA.sharpness_files,
    output:
        csv=f"{MINIMA_TABLES}/runs.csv",
        md=report(
            f"{MINIMA_TABLES}/runs.md",
            caption="../report/minima_runs.rst",
            category=MINIMA_CATEGORY,
            subcategory="Tables",
        ),
    log:
        f"{RESULTS}/logs/minima/runs_table.log",
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        experiments=MINIMA.experiment_flags("role", "equal_ratio", "group"),
    script:
        "../scripts/minima_runs_table.py"


rule minima_ratio_figures:
    input:
        rules.minima_runs_table.output.csv,
    output:
        sharpness_png=report(
            f"{MINIMA_FIGURES}/sharpness_vs_ratio.png",
            caption="../report/minima_sharpness.rst",
            category=MINIMA_CATEGORY,
            subcategory="Sharpness and eta/S",
        ),
        sharpness_pdf=f"{MINIMA_FIGURES}/sharpness_vs_ratio.pdf",
        accuracy_png=report(
            f"{MINIMA_FIGURES}/accuracy_vs_ratio.png",
            caption="../report/minima_accuracy.rst",
            category=MINIMA_CATEGORY,
            subcategory="Sharpness and eta/S",
        ),
        accuracy_pdf=f"{MINIMA_FIGURES}/accuracy_vs_ratio.pdf",
        heatmap_png=report(
            f"{MINIMA_FIGURES}/accuracy_heatmap.png",
            caption="../report/minima_heatmap.rst",
            category=MINIMA_CATEGORY,
            subcategory="Sharpness and eta/S",
        ),
        heatmap_pdf=f"{MINIMA_FIGURES}/accuracy_heatmap.pdf",
    log:
        f"{RESULTS}/logs/minima/ratio_figures.log",
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/minima_ratio_figures.py"


rule minima_interpolation_summary:
    input:
        MINIMA.interpolation_files,
    output:
        csv=f"{MINIMA_TABLES}/interpolation.csv",
        md=report(
            f"{MINIMA_TABLES}/interpolation.md",
            caption="../report/minima_interpolation_table.rst",
            category=MINIMA_CATEGORY,
            subcategory="Tables",
        ),
        png=report(
            f"{MINIMA_FIGURES}/interpolation.png",
            caption="../report/minima_interpolation.rst",
            category=MINIMA_CATEGORY,
            subcategory="Interpolation",
        ),
        pdf=f"{MINIMA_FIGURES}/interpolation.pdf",
    log:
        f"{RESULTS}/logs/minima/interpolation_summary.log",
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/minima_interpolation_summary.py"


rule minima_schedules:
    input:
        status=MINIMA.role_files("schedule", "status.json"),
        history=MINIMA.role_files("schedule", "history.csv"),
    output:
        csv=f"{MINIMA_TABLES}/schedules.csv",
        md=report(
            f"{MINIMA_TABLES}/schedules.md",
            caption="../report/minima_schedule_table.rst",
            category=MINIMA_CATEGORY,
            subcategory="Tables",
        ),
        curves=f"{MINIMA_TABLES}/schedule_curves.csv",
        png=report(
            f"{MINIMA_FIGURES}/schedules.png",
            caption="../report/minima_schedules.rst",
            category=MINIMA_CATEGORY,
            subcategory="Schedules",
        ),
        pdf=f"{MINIMA_FIGURES}/schedules.pdf",
    log:
        f"{RESULTS}/logs/minima/schedules.log",
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        experiments=MINIMA.experiment_flags("paper_accuracy", "paper_setting"),
    script:
        "../scripts/minima_schedules.py"


rule minima_memorization:
    input:
        status=MINIMA.role_files("memorization", "status.json"),
        history=MINIMA.role_files("memorization", "history.csv"),
    output:
        csv=f"{MINIMA_TABLES}/memorization.csv",
        md=report(
            f"{MINIMA_TABLES}/memorization.md",
            caption="../report/minima_memorization_table.rst",
            category=MINIMA_CATEGORY,
            subcategory="Tables",
        ),
        png=report(
            f"{MINIMA_FIGURES}/memorization.png",
            caption="../report/minima_memorization.rst",
            category=MINIMA_CATEGORY,
            subcategory="Memorization",
        ),
        pdf=f"{MINIMA_FIGURES}/memorization.pdf",
    log:
        f"{RESULTS}/logs/minima/memorization.log",
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        experiments=MINIMA.experiment_flags("group"),
        settings=MINIMA.paper_settings("memorization"),
    script:
        "../scripts/minima_memorization.py"


rule minima_breaking:
    input:
        status=MINIMA.role_files("breaking", "status.json"),
    output:
        csv=f"{MINIMA_TABLES}/breaking.csv",
        runs=f"{MINIMA_TABLES}/breaking_runs.csv",
        md=report(
            f"{MINIMA_TABLES}/breaking.md",
            caption="../report/minima_breaking_table.rst",
            category=MINIMA_CATEGORY,
            subcategory="Tables",
        ),
        png=report(
            f"{MINIMA_FIGURES}/breaking.png",
            caption="../report/minima_breaking.rst",
            category=MINIMA_CATEGORY,
            subcategory="Breaking point",
        ),
        pdf=f"{MINIMA_FIGURES}/breaking.pdf",
    log:
        f"{RESULTS}/logs/minima/breaking.log",
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        experiments=MINIMA.experiment_flags("group"),
        settings=MINIMA.paper_settings("breaking"),
    script:
        "../scripts/minima_breaking.py"


rule minima_claims:
    input:
        runs=rules.minima_runs_table.output.csv,
        schedules=rules.minima_schedules.output.csv,
        memorization=rules.minima_memorization.output.csv,
        breaking_runs=rules.minima_breaking.output.runs,
        interpolation=rules.minima_interpolation_summary.output.csv,
    output:
        f"{RESULTS}/claims/minima.csv",
    log:
        f"{RESULTS}/logs/minima/claims.log",
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        side_offset=MINIMA.interpolation_settings()["side_offset"],
        tolerance=MINIMA.paper_settings("breaking")["tolerance"],
    script:
        "../scripts/minima_claims.py"


# everything the `minima` target builds: the aggregate rules' own outputs
PAPER_TARGETS["minima"] = [
    path
    for rule_outputs in (
        rules.minima_runs_table.output,
        rules.minima_ratio_figures.output,
        rules.minima_interpolation_summary.output,
        rules.minima_schedules.output,
        rules.minima_memorization.output,
        rules.minima_breaking.output,
        rules.minima_claims.output,
    )
    for path in rule_outputs
]
