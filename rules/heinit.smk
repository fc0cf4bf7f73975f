# Paper C, "The Benefits of Over-parameterization at Initialization in Deep ReLU Networks"
# (issue 6): simulations at initialization, no training. One cached job per sweep (paper
# setting, width, depth, N, fresh samples, real images), then tables, figures and claims.
# Only a configuration with a `heinit:` section builds the paper's outputs (config.yaml and
# configs/paper.yaml have one; the tiny test configs of the other papers do not).
import os

from repro.heinit import plan as heinit_plan

from repro.data_files import availability_error
from repro.settings import schema_defaults

# validated once in common.smk; without a `heinit:` section (paper C off) its rules still
# read the default settings
if config.get("heinit") is None:
    config["heinit"] = schema_defaults("heinit")

HEINIT = f"{RESULTS}/metrics/heinit"
HEINIT_TABLES = f"{RESULTS}/tables/heinit"
HEINIT_FIGURES = f"{RESULTS}/figures/heinit"
HEINIT_CATEGORY = CATEGORIES["heinit"]
# figure stem -> (caption, subcategory); per_layer_<dataset> is the real-input figure
HEINIT_FIGS = heinit_plan.figures(config["heinit"])

# the real-input sweep's dataset, checked here so no job starts without it (repro.data_files:
# no torch while the workflow is parsed)
if HEINIT_ON:
    _error = availability_error(
        config["heinit"]["real"]["dataset"],
        config.get("data_root", "data"),
        config.get("download", False),
    )
    if _error:
        raise WorkflowError(f"Invalid configuration: heinit.real: {_error}")


rule heinit_sweep:
    output:
        f"{HEINIT}/{{sweep}}.csv",
    log:
        f"{RESULTS}/logs/heinit/{{sweep}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/heinit/{{sweep}}.tsv"
    wildcard_constraints:
        sweep="|".join(heinit_plan.GAUSSIAN_SWEEPS),
    conda:
        "../envs/repro.yaml"
    threads: config["threads"]
    resources:
        mem_mb=lambda wildcards: heinit_plan.sweep_mem_mb(
            config["heinit"], wildcards.sweep
        ),
        runtime=lambda wildcards, attempt: heinit_plan.sweep_runtime(
            config["heinit"], wildcards.sweep, attempt
        ),
        gpu=config["heinit"]["gpu"],
    params:
        settings=lambda wildcards: heinit_plan.sweep_params(
            config["heinit"], wildcards.sweep
        ),
        device=config["device"],
    script:
        "../scripts/heinit_sweep.py"


rule heinit_real:
    output:
        f"{HEINIT}/real.csv",
    log:
        f"{RESULTS}/logs/heinit/real.log",
    benchmark:
        f"{RESULTS}/benchmarks/heinit/real.tsv"
    conda:
        "../envs/repro.yaml"
    threads: config["threads"]
    resources:
        mem_mb=heinit_plan.sweep_mem_mb(config["heinit"], "real"),
        runtime=lambda wildcards, attempt: heinit_plan.sweep_runtime(
            config["heinit"], "real", attempt
        ),
        gpu=config["heinit"]["gpu"],
    params:
        settings=heinit_plan.sweep_params(config["heinit"], "real"),
        device=config["device"],
        data_root=config["data_root"],
        download=config["download"],
    script:
        "../scripts/heinit_real.py"


rule heinit_tables:
    input:
        expand(rules.heinit_sweep.output[0], sweep=heinit_plan.GAUSSIAN_SWEEPS),
        rules.heinit_real.output,
    output:
        per_layer=f"{HEINIT_TABLES}/per_layer.csv",
        summary=f"{HEINIT_TABLES}/summary.csv",
        summary_md=report(
            f"{HEINIT_TABLES}/summary.md",
            caption="../report/heinit_summary.rst",
            category=HEINIT_CATEGORY,
            subcategory="Tables",
        ),
        paper_md=report(
            f"{HEINIT_TABLES}/per_layer_paper.md",
            caption="../report/heinit_paper_table.rst",
            category=HEINIT_CATEGORY,
            subcategory="Tables",
        ),
        glorot=f"{HEINIT_TABLES}/glorot_slopes.csv",
        glorot_md=report(
            f"{HEINIT_TABLES}/glorot_slopes.md",
            caption="../report/heinit_glorot.rst",
            category=HEINIT_CATEGORY,
            subcategory="Tables",
        ),
    log:
        f"{RESULTS}/logs/heinit/tables.log",
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    script:
        "../scripts/heinit_tables.py"


rule heinit_figures:
    input:
        rules.heinit_tables.output.per_layer,
    output:
        [
            report(
                f"{HEINIT_FIGURES}/{name}.png",
                caption=f"../report/heinit_{caption}.rst",
                category=HEINIT_CATEGORY,
                subcategory=subcategory,
            )
            for name, (caption, subcategory) in HEINIT_FIGS.items()
        ],
        [f"{HEINIT_FIGURES}/{name}.pdf" for name in HEINIT_FIGS],
    log:
        f"{RESULTS}/logs/heinit/figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/heinit/figures.tsv"
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output[0]),
    script:
        "../scripts/heinit_figures.py"


rule heinit_claims:
    input:
        rules.heinit_tables.output.per_layer,
    output:
        f"{RESULTS}/claims/heinit.csv",
    log:
        f"{RESULTS}/logs/heinit/claims.log",
    conda:
        "../envs/repro.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
        gpu=0,
    script:
        "../scripts/heinit_claims.py"


if HEINIT_ON:
    PAPER_TARGETS["heinit"] = [
        *rules.heinit_tables.input,
        *rules.heinit_tables.output,
        *rules.heinit_figures.output,
        *rules.heinit_claims.output,
    ]
    CLAIM_PAPERS.append("heinit")
