# The run table and the small get_* functions that decide which files a rule needs.
import os
from types import SimpleNamespace

from repro.config import (
    ConfigError,
    parse_config,
    run_table,
    snapshot_epochs,
)
from repro import costs
from repro import papers as paper_registry
from repro.report_pages import OVERVIEW

# a `heinit:` section, even an empty one (= the defaults), turns paper C on
HEINIT_ON = "heinit" in config
# the files Snakemake read the config from, re-read strictly (a key given twice)
CONFIG_FILES = workflow.config_settings.configfiles or [
    os.path.join(workflow.basedir, "config.yaml")
]

try:
    RUNS = parse_config(config, CONFIG_FILES)
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration: {error}") from None

PAPERS = list(paper_registry.KEYS)
# each paper's section in `snakemake --report` (the papers' report() flags use it)
CATEGORIES = {p.key: p.category for p in paper_registry.PAPERS}
RESULTS = "results"
RESULTS_FOLDERS = [
    "runs",
    "checkpoints",
    "metrics",
    "tables",
    "figures",
    "claims",
    "logs",
    "report",
]


def results_folder_problem(root):
    """Why jobs could not write under `root` (None if they can): checked before any job."""
    for path in [root] + [os.path.join(root, sub) for sub in RESULTS_FOLDERS]:
        if os.path.lexists(path) and not os.path.isdir(path):
            return f"{path} exists but is not a folder; move it away or delete it"
    folder = root if os.path.isdir(root) else "."
    if not os.access(folder, os.W_OK):
        return f"{os.path.abspath(folder)} is not writable (read-only file system or no permission)"
    return None


if workflow.is_main_process and not workflow.dryrun:
    _problem = results_folder_problem(RESULTS)
    if _problem:
        raise WorkflowError(f"Cannot write results: {_problem}")


wildcard_constraints:
    experiment=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    run=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    snapshot=r"e[0-9]+(\.[0-9]+)?",
    paper="|".join(PAPERS),


def runs_of(paper=None, experiment=None):
    """(experiment, run) pairs, optionally of one paper or one experiment."""
    return [
        key
        for key, cfg in RUNS.items()
        if (paper is None or cfg["paper"] == paper)
        and (experiment is None or key[0] == experiment)
    ]


def training_spec(wildcards):
    """What defines a trained model; a change here (and only here) retrains."""
    cfg = RUNS[(wildcards.experiment, wildcards.run)]
    keys = (
        "seed",
        "dataset",
        "test_fraction",
        "train_size",
        "label_noise",
        "label_noise_seed",
        "model",
        "train",
        "snapshots",
    )
    return {k: cfg[k] for k in keys if k in cfg}


def get_snapshot_epochs(wildcards):
    return snapshot_epochs(RUNS[(wildcards.experiment, wildcards.run)])


def run_dir(experiment, run):
    return f"{RESULTS}/runs/{experiment}/{run}"


# batched training (rules/train.smk, repro.train_batches): a batch rule's outputs, params, runtime
TRAIN_FILES = ("model.pt", "history.csv", "timing.csv", "status.json")


def batch_outputs(batch):
    """Every file `train` declares, for each run of the batch."""
    out = []
    for run in batch.runs:
        folder = run_dir(batch.experiment, run)
        out += [f"{folder}/{name}" for name in TRAIN_FILES]
        out.append(directory(f"{folder}/snapshots"))
    return out


def batch_jobs(batch):
    """repro.train.train_runs' jobs: per run, what its own `train` job gets as params."""
    jobs = []
    for run in batch.runs:
        wildcards = SimpleNamespace(experiment=batch.experiment, run=run)
        jobs.append(
            dict(
                run=run,
                spec=training_spec(wildcards),
                out_dir=run_dir(batch.experiment, run),
                ckpt_dir=f"{RESULTS}/checkpoints/{batch.experiment}/{run}",
                snapshot_epochs=get_snapshot_epochs(wildcards),
            )
        )
    return jobs


def batch_runtime(batch):
    """Minutes: the sum of what the runs' own jobs ask (repro.costs), x attempt."""
    cfgs = [RUNS[(batch.experiment, run)] for run in batch.runs]
    return lambda wildcards, attempt: costs.train_batch_runtime_min(
        cfgs, attempt, config["train_runtime"]
    )


def get_trained(paper=None, experiment=None):
    return [f"{run_dir(e, r)}/status.json" for e, r in runs_of(paper, experiment)]


def paper_enabled(paper):
    """A paper runs when the config has its experiments (heinit: its section)."""
    if paper == "heinit":
        return HEINIT_ON
    return bool(runs_of(paper))


def get_paper_targets(paper):
    """Everything a paper's target rule produces (filled in by the paper's rules file)."""
    if not paper_enabled(paper):
        return []
    return PAPER_TARGETS.get(paper, []) + get_trained(paper)


def get_claim_tables():
    return [
        f"{RESULTS}/claims/{paper}.csv"
        for paper in CLAIM_PAPERS
        if paper_enabled(paper)
    ]


# paper -> files its target rule builds; each paper's .smk adds to it
PAPER_TARGETS = {}
# papers that write results/claims/{paper}.csv
CLAIM_PAPERS = []


def get_all_targets():
    targets = [f"{RESULTS}/run_table.csv", f"{RESULTS}/claims.md"]
    for paper in PAPERS:
        targets += get_paper_targets(paper)
    return targets + get_trained("foundation")


def train_runtime(wildcards, attempt):
    """Minutes; grows per attempt so a time-limit kill is resubmitted and resumes."""
    return config["train_runtime"] * attempt
