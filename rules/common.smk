# The run table and the small get_* functions that decide which files a rule needs.
import os

from snakemake.utils import validate

from repro.config import (
    ConfigError,
    describe_schema_error,
    expand_runs,
    run_table,
    snapshot_epochs,
)
from repro import costs
from repro.report_pages import CATEGORIES, OVERVIEW

# read before heinit.smk fills in an empty `heinit:` section with the defaults
HEINIT_ON = config.get("heinit") is not None

try:
    validate(config, "../schemas/config.schema.yaml")
    RUNS = expand_runs(config)
except (WorkflowError, ConfigError) as error:
    raise WorkflowError(
        f"Invalid configuration: {describe_schema_error(error)}"
    ) from None

PAPERS = ["iterative", "minima", "heinit", "breakeven"]
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
