"""What every Snakemake script does first: log to the rule's log, set torch threads."""

from __future__ import annotations

import logging
import sys
import traceback


def start_job(snakemake) -> logging.Logger:
    """Send stderr and logging to the rule's log file; use the rule's thread count.

    Progress lines (one per epoch in training) go to this log, so
    ``tail -f results/logs/...`` follows a running job. The log is appended to, with a
    header per start: a retried (resumed) job keeps the lines of the attempt before it.
    """
    if snakemake.log:
        sys.stderr = open(snakemake.log[0], "a", buffering=1)
        attempt = getattr(snakemake, "attempt", 1)
        print(f"==== {snakemake.rule} started (attempt {attempt})", file=sys.stderr)
        sys.excepthook = _also_to_console(snakemake.rule)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(max(1, int(snakemake.threads)))
    return logging.getLogger(f"repro.rule.{snakemake.rule}")


def _also_to_console(rule: str):
    """An uncaught error goes to the log and, in one line, to Snakemake's console: on a full
    disk the log may not take the traceback, and the reader should not have to open it."""
    def hook(kind, value, tb):
        try:
            traceback.print_exception(kind, value, tb)
        finally:
            print(f"{rule}: {kind.__name__}: {value}", file=sys.__stderr__, flush=True)
    return hook
