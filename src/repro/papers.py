"""The one registry of the four papers: id (claims, comparison), key (Snakemake target,
results/<key>/ folders, config sections), report category and title. Everything that
needs to name a paper looks it up here, so a paper is spelled one way everywhere."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paper:
    id: str        # "A".."D": claim ids, claims.csv's `paper` column, the comparison table
    key: str       # "iterative" | "minima" | "heinit" | "breakeven": target rule and folder names
    category: str  # the paper's section in `snakemake --report`
    title: str     # heading of the paper's tables and report page


PAPERS = (
    Paper("A", "iterative", "A. Iterative inference", "A. Residual connections encourage iterative inference"),
    Paper("B", "minima", "B. Three factors (minima)", "B. Three factors influencing minima in SGD"),
    Paper("C", "heinit", "C. He initialization", "C. Over-parameterization at initialization (He init)"),
    Paper("D", "breakeven", "D. Break-even point", "D. The break-even point"),
)
KEYS = tuple(p.key for p in PAPERS)
IDS = tuple(p.id for p in PAPERS)


def get(key_or_id: str) -> Paper:
    """The paper named by its key ("minima") or its id ("B")."""
    for p in PAPERS:
        if key_or_id in (p.key, p.id):
            return p
    raise KeyError(f"unknown paper {key_or_id!r}; known: {', '.join(KEYS)} (or {', '.join(IDS)})")
