"""Per-paper job count, wall seconds and CPU seconds of a finished run, from Snakemake's
benchmark files (results/benchmarks/**/*.tsv), and the start-up share.

    .venv/bin/python benchmarks/job_seconds.py results [other_results ...]

A job's paper is the paper key its benchmark path names (benchmarks/<paper>/..., or
benchmarks/train[_batch]/<experiment>/... with the experiment named <paper>_*). Start-up share:
jobs x the given per-job start-up seconds (--startup, e.g. `import torch` measured on the
same machine) over the summed job wall seconds. Load-sensitive: say the load average beside
any figure taken from it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

PAPERS = ("iterative", "minima", "heinit", "breakeven")


def paper_of(rel: Path) -> str:
    parts = rel.parts
    name = parts[1] if parts[0] in ("train", "train_batch") and len(parts) > 1 else parts[0]
    return next((p for p in PAPERS if name.startswith(p)), "other")


def job_seconds(results: Path) -> pd.DataFrame:
    rows = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        last = pd.read_csv(tsv, sep="\t").iloc[-1]
        rel = tsv.relative_to(results / "benchmarks")
        rows.append(dict(paper=paper_of(rel), kind=rel.parts[0], wall_s=float(last["s"]),
                         cpu_s=float(last.get("cpu_time", float("nan")))))
    frame = pd.DataFrame(rows)
    out = frame.groupby("paper").agg(jobs=("wall_s", "size"), wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"))
    out.loc["all"] = out.sum()
    return out.round(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--startup", type=float, default=None, help="seconds of start-up per job")
    args = parser.parse_args()
    for results in args.results:
        table = job_seconds(results)
        print(f"## {results}\n\n{table.to_markdown()}\n")
        if args.startup:
            jobs, wall = table.loc["all", "jobs"], table.loc["all", "wall_s"]
            print(f"start-up share: {jobs:.0f} jobs x {args.startup} s / {wall:.0f} job-s = "
                  f"{jobs * args.startup / wall:.0%}\n")


if __name__ == "__main__":
    main()
