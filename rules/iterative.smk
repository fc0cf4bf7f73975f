# Paper A, "Residual Connections Encourage Iterative Inference": the `iterative` target.
# Per run: final-model block measurements and snapshot measurements (never retrain);
# then tidy tables, figures and claims (results/{tables,figures}/iterative, results/claims).
from repro import iterative_analysis as ia


validate(config.setdefault("iterative", {}), "../schemas/iterative.schema.yaml")
for _name, _exp in config["experiments"].items():
    if _exp.get("paper") == "iterative":
        validate(
            ia.settings_for(config["iterative"], _exp.get("analysis")),
            "../schemas/iterative.schema.yaml",
        )

ITER_METRICS = f"{RESULTS}/metrics/iterative"
ITER_TABLES = f"{RESULTS}/tables/iterative"
ITER_FIGURES = f"{RESULTS}/figures/iterative"
ITER_CATEGORY = "A: iterative inference"


def iterative_settings(wildcards, keys):
    """Paper-level settings overridden by the experiment's `analysis:`, only `keys`."""
    exp = config["experiments"][wildcards.experiment]
    settings = ia.settings_for(config["iterative"], exp.get("analysis"))
    return {k: settings[k] for k in keys}


def get_iterative_span(wildcards):
    """Top blocks per stage the sharing diagnostics span: the experiment's shared count."""
    shared = [
        RUNS[key]["model"].get("shared_blocks", 0)
        for key in runs_of(experiment=wildcards.experiment)
    ]
    return max(shared) or None


def get_iterative_measured():
    """(experiment, run) pairs whose final models get the block measurements."""
    keep = []
    for key in runs_of(paper="iterative"):
        exp = config["experiments"][key[0]]
        settings = ia.settings_for(config["iterative"], exp.get("analysis"))
        if ia.variant_of(RUNS[key]["model"]) in settings["measure_variants"]:
            keep.append(key)
    return keep


def get_iterative_inputs(kind):
    """Per-run measurement files of one table kind for every run that has them."""
    keys = (
        get_iterative_measured()
        if kind in ia.MODEL_TABLES
        else runs_of(paper="iterative")
    )
    return [f"{ITER_METRICS}/{e}/{r}/{kind}.csv" for e, r in keys]


def get_iterative_records(wildcards):
    return [ia.run_record(RUNS[key]) for key in runs_of(paper="iterative")]


def iterative_report(name, subcategory):
    return report(
        f"{ITER_FIGURES}/{name}.png",
        caption=f"../report/iterative_{name}.rst",
        category=ITER_CATEGORY,
        subcategory=subcategory,
    )


rule iterative_model_metrics:
    input:
        model=f"{RESULTS}/runs/{{experiment}}/{{run}}/model.pt",
        status=f"{RESULTS}/runs/{{experiment}}/{{run}}/status.json",
    output:
        blocks=f"{ITER_METRICS}/{{experiment}}/{{run}}/blocks.csv",
        drop=f"{ITER_METRICS}/{{experiment}}/{{run}}/drop.csv",
        borderline=f"{ITER_METRICS}/{{experiment}}/{{run}}/borderline.csv",
        unroll=f"{ITER_METRICS}/{{experiment}}/{{run}}/unroll.csv",
    log:
        f"{RESULTS}/logs/iterative/model_metrics/{{experiment}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/iterative/model_metrics/{{experiment}}/{{run}}.tsv"
    params:
        run=lambda wildcards: RUNS[(wildcards.experiment, wildcards.run)],
        settings=lambda wildcards: iterative_settings(wildcards, ia.MODEL_KEYS),
        device=config["device"],
        data_root=config["data_root"],
        download=config["download"],
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=0,
    script:
        "../scripts/iterative_model_metrics.py"


rule iterative_snapshot_metrics:
    input:
        snapshots=f"{RESULTS}/runs/{{experiment}}/{{run}}/snapshots",
        status=f"{RESULTS}/runs/{{experiment}}/{{run}}/status.json",
    output:
        heads=f"{ITER_METRICS}/{{experiment}}/{{run}}/heads.csv",
        init=f"{ITER_METRICS}/{{experiment}}/{{run}}/init.csv",
    log:
        f"{RESULTS}/logs/iterative/snapshot_metrics/{{experiment}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/iterative/snapshot_metrics/{{experiment}}/{{run}}.tsv"
    params:
        run=lambda wildcards: RUNS[(wildcards.experiment, wildcards.run)],
        epochs=get_snapshot_epochs,
        span=get_iterative_span,
        settings=lambda wildcards: iterative_settings(wildcards, ia.SNAPSHOT_KEYS),
        device=config["device"],
        data_root=config["data_root"],
        download=config["download"],
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=0,
    script:
        "../scripts/iterative_snapshot_metrics.py"


rule iterative_tables:
    input:
        blocks=get_iterative_inputs("blocks"),
        drop=get_iterative_inputs("drop"),
        borderline=get_iterative_inputs("borderline"),
        unroll=get_iterative_inputs("unroll"),
        heads=get_iterative_inputs("heads"),
        init=get_iterative_inputs("init"),
        histories=[f"{run_dir(e, r)}/history.csv" for e, r in runs_of(paper="iterative")],
        statuses=[f"{run_dir(e, r)}/status.json" for e, r in runs_of(paper="iterative")],
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
    params:
        records=get_iterative_records,
        out_dir=ITER_TABLES,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    script:
        "../scripts/iterative_tables.py"


rule iterative_figures:
    input:
        expand(f"{ITER_TABLES}/{{name}}.csv", name=ia.TABLES),
    output:
        cosine=iterative_report("cosine", "Block metrics"),
        norm_ratio=iterative_report("norm_ratio", "Block metrics"),
        drop=iterative_report("drop", "Block metrics"),
        heads=iterative_report("heads", "Refinement"),
        borderline=iterative_report("borderline", "Refinement"),
        unroll=iterative_report("unroll", "Refinement"),
        sharing_init=iterative_report("sharing_init", "Sharing"),
        sharing_curves=iterative_report("sharing_curves", "Sharing"),
        pdf=expand(f"{ITER_FIGURES}/{{name}}.pdf", name=ia.FIGURES),
    log:
        f"{RESULTS}/logs/iterative/figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/iterative/figures.tsv"
    params:
        table_dir=ITER_TABLES,
        out_dir=ITER_FIGURES,
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
    output:
        f"{RESULTS}/claims/iterative.csv",
    log:
        f"{RESULTS}/logs/iterative/claims.log",
    params:
        table_dir=ITER_TABLES,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
        gpu=0,
    script:
        "../scripts/iterative_claims.py"


PAPER_TARGETS["iterative"] = (
    [f"{RESULTS}/claims/iterative.csv"]
    + expand(f"{ITER_TABLES}/{{name}}.{{ext}}", name=ia.TABLES, ext=["csv", "md"])
    + [f"{ITER_TABLES}/table1.tex"]
    + expand(f"{ITER_FIGURES}/{{name}}.{{ext}}", name=ia.FIGURES, ext=["png", "pdf"])
)
CLAIM_PAPERS.append("iterative")
