"""What every Snakemake script does first: log to the rule's log, set torch threads."""

from __future__ import annotations

import logging
import sys


def start_job(snakemake) -> logging.Logger:
    """Send stderr and logging to the rule's log file; use the rule's thread count.

    Progress lines (one per epoch in training) go to this log, so
    ``tail -f results/logs/...`` follows a running job.
    """
    if snakemake.log:
        sys.stderr = open(snakemake.log[0], "w", buffering=1)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(max(1, int(snakemake.threads)))
    return logging.getLogger(f"repro.rule.{snakemake.rule}")
