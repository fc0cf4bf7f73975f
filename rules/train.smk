# Training: one job per run; resumable from results/checkpoints/ (not a declared output).

# a run's folder with wildcards, spelled by the one run-folder helper (rules/common.smk)
TRAIN_RUN = run_dir("{experiment}", "{run}")


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
