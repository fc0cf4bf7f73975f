# Paper A, "Residual Connections Encourage Iterative Inference": the `iterative` target.
# Per run: final-model block measurements and snapshot measurements (never retrain);
# then tidy tables, figures and claims (results/{tables,figures}/iterative, results/claims).
# The logic deciding which files are needed lives in repro.iterative.plan (no torch),
# imported as `ia` (the name the settings validation below uses).
from repro.iterative import plan as ia

# settings: validated once in common.smk (repro.settings; `analysis:` overrides included)

ITER_METRICS = f"{RESULTS}/metrics/iterative"
ITER_TABLES = f"{RESULTS}/tables/iterative"
ITER_FIGURES = f"{RESULTS}/figures/iterative"
ITER_CATEGORY = ia.PAPER.category
ITER_RUNS = ia.paper_runs(RUNS)


rule iterative_model_metrics:
    input:
        model=f"{run_dir('{experiment}', '{run}')}/model.pt",
        status=f"{run_dir('{experiment}', '{run}')}/status.json",
    output:
        blocks=f"{ITER_METRICS}/{{experiment}}/{{run}}/blocks.csv",
        drop=f"{ITER_METRICS}/{{experiment}}/{{run}}/drop.csv",
        borderline=f"{ITER_METRICS}/{{experiment}}/{{run}}/borderline.csv",
        unroll=f"{ITER_METRICS}/{{experiment}}/{{run}}/unroll.csv",
    log:
        f"{RESULTS}/logs/iterative/model_metrics/{{experiment}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/iterative/model_metrics/{{experiment}}/{{run}}.tsv"
    conda:
        "../envs/repro.yaml"
    threads: config["threads"]
    resources:
        mem_mb=config["iterative"]["mem_mb"],
        runtime=lambda wildcards, attempt: costs.measure_runtime_min(
            RUNS[(wildcards.experiment, wildcards.run)],
            costs.iterative_passes(config["iterative"]),
            attempt,
        ),
        gpu=config["iterative"]["gpu"],
    params:
        run=lambda wildcards: RUNS[(wildcards.experiment, wildcards.run)],
        settings=lambda wildcards: ia.experiment_settings(
            config, wildcards.experiment, ia.MODEL_KEYS
        ),
        device=config["device"],
        data_root=config["data_root"],
        download=config["download"],
    script:
        "../scripts/iterative_model_metrics.py"


rule iterative_snapshot_metrics:
    input:
        snapshots=f"{run_dir('{experiment}', '{run}')}/snapshots",
        status=f"{run_dir('{experiment}', '{run}')}/status.json",
    output:
        heads=f"{ITER_METRICS}/{{experiment}}/{{run}}/heads.csv",
        init=f"{ITER_METRICS}/{{experiment}}/{{run}}/init.csv",
    log:
        f"{RESULTS}/logs/iterative/snapshot_metrics/{{experiment}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/iterative/snapshot_metrics/{{experiment}}/{{run}}.tsv"
    conda:
        "../envs/repro.yaml"
    threads: config["threads"]
    resources:
        mem_mb=config["iterative"]["mem_mb"],
        runtime=lambda wildcards, attempt: costs.measure_runtime_min(
            RUNS[(wildcards.experiment, wildcards.run)],
            costs.iterative_passes(
                config["iterative"], len(get_snapshot_epochs(wildcards))
            ),
            attempt,
        ),
        gpu=config["iterative"]["gpu"],
    params:
        run=lambda wildcards: RUNS[(wildcards.experiment, wildcards.run)],
        epochs=get_snapshot_epochs,
        span=lambda wildcards: ia.sharing_span(RUNS, wildcards.experiment),
        settings=lambda wildcards: ia.experiment_settings(
            config, wildcards.experiment, ia.SNAPSHOT_KEYS
        ),
        device=config["device"],
        data_root=config["data_root"],
        download=config["download"],
    script:
        "../scripts/iterative_snapshot_metrics.py"


rule iterative_sharing_init:
    output:
        f"{ITER_TABLES}/sharing_init.csv",
    log:
        f"{RESULTS}/logs/iterative/sharing_init.log",
    benchmark:
        f"{RESULTS}/benchmarks/iterative/sharing_init.tsv"
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=config["iterative"]["mem_mb"],
        runtime=10,
        gpu=0,
    params:
        run=lambda wildcards: ia.sharing_init_run(config, RUNS),
        sharing=lambda wildcards: ia.sharing_init_settings(config),
        settings=lambda wildcards: ia.experiment_settings(
            config, ia.sharing_init_settings(config)["experiment"], ia.SNAPSHOT_KEYS
        ),
        data_root=config["data_root"],
        download=config["download"],
    script:
        "../scripts/iterative_sharing_init.py"


rule iterative_tables:
    input:
        blocks=ia.metric_paths(config, RUNS, "blocks", ITER_METRICS),
        drop=ia.metric_paths(config, RUNS, "drop", ITER_METRICS),
        borderline=ia.metric_paths(config, RUNS, "borderline", ITER_METRICS),
        unroll=ia.metric_paths(config, RUNS, "unroll", ITER_METRICS),
        heads=ia.metric_paths(config, RUNS, "heads", ITER_METRICS),
        init=ia.metric_paths(config, RUNS, "init", ITER_METRICS),
        histories=[f"{run_dir(e, r)}/history.csv" for e, r in ITER_RUNS],
        statuses=[f"{run_dir(e, r)}/status.json" for e, r in ITER_RUNS],
    output:
        csv=expand(f"{ITER_TABLES}/{{name}}.csv", name=ia.TABLES),
        md=expand(f"{ITER_TABLES}/{{name}}.md", name=ia.TABLES[:-1]),
        table1_md=report(
            f"{ITER_TABLES}/table1.md",
            caption="../report/iterative_table1.rst",
            category=ITER_CATEGORY,
            subcategory="Tables",
        ),
        table1_tex=f"{ITER_TABLES}/table1.tex",
    log:
        f"{RESULTS}/logs/iterative/tables.log",
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    params:
        # the run configs, not measure.run_record: counting a model's parameters builds it,
        # too slow for every DAG build at paper scale; the job computes the records
        runs=lambda wildcards: [RUNS[key] for key in ITER_RUNS],
    script:
        "../scripts/iterative_tables.py"


rule iterative_figures:
    input:
        expand(f"{ITER_TABLES}/{{name}}.csv", name=ia.TABLES),
        sharing_init=(
            [f"{ITER_TABLES}/sharing_init.csv"]
            if ia.sharing_init_settings(config)
            else []
        ),
    output:
        cosine=report(
            f"{ITER_FIGURES}/cosine.png",
            caption="../report/iterative_cosine.rst",
            category=ITER_CATEGORY,
            subcategory="Block metrics",
        ),
        norm_ratio=report(
            f"{ITER_FIGURES}/norm_ratio.png",
            caption="../report/iterative_norm_ratio.rst",
            category=ITER_CATEGORY,
            subcategory="Block metrics",
        ),
        drop=report(
            f"{ITER_FIGURES}/drop.png",
            caption="../report/iterative_drop.rst",
            category=ITER_CATEGORY,
            subcategory="Block metrics",
        ),
        heads=report(
            f"{ITER_FIGURES}/heads.png",
            caption="../report/iterative_heads.rst",
            category=ITER_CATEGORY,
            subcategory="Refinement",
        ),
        borderline=report(
            f"{ITER_FIGURES}/borderline.png",
            caption="../report/iterative_borderline.rst",
            category=ITER_CATEGORY,
            subcategory="Refinement",
        ),
        unroll=report(
            f"{ITER_FIGURES}/unroll.png",
            caption="../report/iterative_unroll.rst",
            category=ITER_CATEGORY,
            subcategory="Refinement",
        ),
        sharing_init=report(
            f"{ITER_FIGURES}/sharing_init.png",
            caption="../report/iterative_sharing_init.rst",
            category=ITER_CATEGORY,
            subcategory="Sharing",
        ),
        sharing_curves=report(
            f"{ITER_FIGURES}/sharing_curves.png",
            caption="../report/iterative_sharing_curves.rst",
            category=ITER_CATEGORY,
            subcategory="Sharing",
        ),
        pdf=expand(f"{ITER_FIGURES}/{{name}}.pdf", name=ia.FIGURES),
    log:
        f"{RESULTS}/logs/iterative/figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/iterative/figures.tsv"
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    script:
        "../scripts/iterative_figures.py"


rule iterative_claims:
    input:
        expand(f"{ITER_TABLES}/{{name}}.csv", name=ia.TABLES),
        sharing_init=(
            [f"{ITER_TABLES}/sharing_init.csv"]
            if ia.sharing_init_settings(config)
            else []
        ),
    output:
        f"{RESULTS}/claims/iterative.csv",
    log:
        f"{RESULTS}/logs/iterative/claims.log",
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
        gpu=0,
    params:
        settings=ia.settings_for(config.get("iterative")),
    script:
        "../scripts/iterative_claims.py"


PAPER_TARGETS[ia.PAPER.key] = (
    list(rules.iterative_claims.output)
    + list(rules.iterative_tables.output)
    + list(rules.iterative_figures.output)
)
CLAIM_PAPERS.append(ia.PAPER.key)
