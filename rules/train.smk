# Training: one job per run, or per batch of runs (config `train_batch`); every run is
# resumable from results/checkpoints/<experiment>/<run>/ (not a declared output).
from repro.train_batches import train_batches

# a run's folder with wildcards, spelled by the one run-folder helper (rules/common.smk)
TRAIN_RUN = run_dir("{experiment}", "{run}")
# batches of >= 2 runs trained in one job each (none at the paper scale)
TRAIN_BATCHES = train_batches(RUNS, config["train_batch"])


rule run_table:
    output:
        report(
            f"{RESULTS}/run_table.csv",
            caption="../report/run_table.rst",
            category=OVERVIEW,
            subcategory="Run settings",
        ),
    log:
        f"{RESULTS}/logs/run_table.log",
    localrule: True
    conda:
        "../envs/repro.yaml"
    params:
        table=lambda wildcards: run_table(RUNS).to_dict("records"),
    script:
        "../scripts/run_table.py"


rule train:
    output:
        model=f"{TRAIN_RUN}/model.pt",
        history=f"{TRAIN_RUN}/history.csv",
        timing=f"{TRAIN_RUN}/timing.csv",
        status=f"{TRAIN_RUN}/status.json",
        snapshots=directory(f"{TRAIN_RUN}/snapshots"),
    log:
        f"{RESULTS}/logs/train/{{experiment}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{experiment}}/{{run}}.tsv"
    retries: 1
    conda:
        "../envs/repro.yaml"
    threads: config["threads"]
    resources:
        mem_mb=lambda wildcards: costs.train_mem_mb(
            RUNS[(wildcards.experiment, wildcards.run)]
        ),
        runtime=lambda wildcards, attempt: max(
            train_runtime(wildcards, attempt),
            costs.train_runtime_min(
                RUNS[(wildcards.experiment, wildcards.run)], attempt
            ),
        ),
        gpu=0,
    params:
        spec=training_spec,
        snapshot_epochs=get_snapshot_epochs,
        checkpoints=lambda wildcards: f"{RESULTS}/checkpoints/{wildcards.experiment}/{wildcards.run}",
        device=config["device"],
        data_root=config["data_root"],
        download=config["download"],
    script:
        "../scripts/train.py"


# ---- batched training (config `train_batch`, repro.train_batches) ------------------------
# One rule per batch: its outputs are its runs' files, the same paths `train` writes, and
# the ruleorder makes Snakemake build them with this rule instead of `train`. A change to one
# run of a batch reruns the batch job; its other runs then resume from their own final
# checkpoints (rewritten, not trained again). Profiles' per-rule settings (set-resources,
# set-threads: train) name the one-run rule: the paper scale does not batch.
for batch in TRAIN_BATCHES:

    rule:
        name:
            batch.rule
        output:
            batch_outputs(batch),
        log:
            f"{RESULTS}/logs/train_batch/{batch.experiment}/{batch.name}.log",
        benchmark:
            f"{RESULTS}/benchmarks/train_batch/{batch.experiment}/{batch.name}.tsv"
        retries: 1
        conda:
            "../envs/repro.yaml"
        threads: config["threads"]
        resources:
            mem_mb=costs.train_batch_mem_mb(
                [RUNS[(batch.experiment, run)] for run in batch.runs]
            ),
            runtime=batch_runtime(batch),
            gpu=0,
        params:
            runs=batch_jobs(batch),
            device=config["device"],
            data_root=config["data_root"],
            download=config["download"],
        script:
            "../scripts/train_batch.py"

    workflow.ruleorder(batch.rule, "train")
