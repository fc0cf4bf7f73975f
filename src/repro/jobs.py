"""What every Snakemake script does first: log to the rule's log, set torch threads."""

from __future__ import annotations

import logging
import os
import sys
import traceback

# the thread-count variables torch (OpenMP, MKL) and numpy's BLAS read when they load
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


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
    set_threads(max(1, int(snakemake.threads)))
    return logging.getLogger(f"repro.rule.{snakemake.rule}")


def set_threads(threads: int) -> None:
    """Use `threads` CPU threads in torch and BLAS, without importing torch.

    Why: ``import torch`` costs ~3 s; a job that only reads tables and writes claims must not
    pay it. A library loaded later reads the environment variables; one loaded already (the
    script imported it before calling :func:`start_job`) is told directly.
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def _also_to_console(rule: str):
    """An uncaught error goes to the log and, in one line, to Snakemake's console: on a full
    disk the log may not take the traceback, and the reader should not have to open it."""
    def hook(kind, value, tb):
        try:
            traceback.print_exception(kind, value, tb)
        finally:
            print(f"{rule}: {kind.__name__}: {value}", file=sys.__stderr__, flush=True)
    return hook
