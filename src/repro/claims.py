"""The claims registry: each paper claim as a measured statistic against a fixed threshold.

:class:`Claim` is the one claim record of every paper (``paper`` = the paper's id "A".."D"
from :mod:`repro.papers`). A paper's claims module returns a list of them; the ``claims`` rule
writes them all to results/claims.csv and results/claims.md. Thresholds are fixed in the
code (chosen from the paper or theory before looking at our numbers) and written beside
the value, so a reader sees exactly what was tested. A claim whose data are missing
(e.g. every run diverged) is "inconclusive", never "holds".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from . import papers
from .io import atomic_write_text

VERDICTS = ("holds", "fails", "inconclusive")
COLUMNS = ["id", "paper", "statement", "statistic", "threshold", "value", "ci_low", "ci_high",
           "interval", "n_seeds", "scale", "verdict", "note"]


@dataclass
class Claim:
    id: str
    paper: str
    statement: str
    statistic: str
    threshold: str
    value: float | str | None
    verdict: str
    note: str = field(default="")
    # the interval the verdict is read from (docs/CLAIMS.md 1.1, 1.5); empty for a paper
    # whose claims do not report one yet
    ci_low: float | None = None
    ci_high: float | None = None
    interval: str = ""          # method, e.g. "95% percentile bootstrap over seeds [0, 1, 2], B=10000"
    n_seeds: int | None = None
    scale: str = ""             # "default" | "medium": the scale the claim is registered at

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def compare(value: float | None, op: str, threshold: float) -> str:
    """'holds' if `value op threshold`, 'fails' if not, 'inconclusive' if value is missing/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "inconclusive"
    ok = {"<": value < threshold, "<=": value <= threshold, ">": value > threshold,
          ">=": value >= threshold}[op]
    return "holds" if ok else "fails"


def per_group(frame: pd.DataFrame, column: str, evaluate: Callable[..., list[Claim]], *args,
              **kwargs) -> list[Claim]:
    """The claims `evaluate(part, *args, **kwargs)` within each group of `frame[column]`.

    Why: a claim compares like with like, so runs of different groups (e.g. datasets)
    are tested separately. With one group (or none, or no `column`) the claims of the
    whole frame keep their ids; with several, each group's claims are evaluated on its
    rows alone and their ids get the suffix "[group]", groups in order of appearance.
    """
    groups = list(dict.fromkeys(frame[column])) if len(frame) and column in frame else []
    if len(groups) <= 1:
        return evaluate(frame, *args, **kwargs)
    return [replace(claim, id=f"{claim.id}[{group}]")
            for group in groups for claim in evaluate(frame[frame[column] == group], *args, **kwargs)]


# docs/CLAIMS.md section 2: the scale(s) at which each claim's verdict counts. A2, A3 and A6
# count at both, each on its own model (multi-stage ResNet at default, single-representation
# net at medium). Ids are matched without a "[group]" suffix.
REGISTERED_SCALES = {
    **dict.fromkeys(["A1a", "A1b", "A4a", "B1a", "B1b", "B2", "B3a", "B3b", "B4a", "B4b",
                     "B7a", "B7b", "C1-forward", "C1-backward", "C1u-forward", "C1u-backward",
                     "C2-forward", "C2-backward", "C3-forward", "C3-backward", "C4-forward",
                     "D1a-cnn", "D1b-cnn", "D1c", "D1d", "D2a-cnn", "D2b-cnn", "D2c", "D2d",
                     "D3a", "D3b"], ("default",)),
    **dict.fromkeys(["A2", "A3", "A6"], ("default", "medium")),
    **dict.fromkeys(["A4b", "A5", "A7", "B5", "B6", "D1a-bn", "D1b-bn", "D2a-bn", "D2b-bn"], ("medium",)),
}
SCALES = ("default", "medium", "paper")


def registered_scales(claim_id: str) -> tuple[str, ...]:
    """The scales at which the claim `claim_id` ("A2" or "A2[group]") is judged."""
    base = str(claim_id).split("[", 1)[0]
    if base not in REGISTERED_SCALES:
        raise KeyError(f"claim {claim_id!r} is not in the register of docs/CLAIMS.md section 2 "
                       "(repro.claims.REGISTERED_SCALES): add it there before judging it")
    return REGISTERED_SCALES[base]


def judge_at_scale(frame: pd.DataFrame, scale: str) -> pd.DataFrame:
    """Each claim's verdict as this scale may give it (docs/CLAIMS.md section 2).

    A claim registered only at another scale keeps its value and interval but is
    inconclusive, with a note saying where its verdict lives; `scale` records where it is
    registered. At the paper scale (the papers' own settings) every claim is judged.
    """
    if scale not in SCALES:
        raise ValueError(f"claims.scale must be one of {SCALES}, got {scale!r}")
    out = frame.copy()
    registered = [registered_scales(claim_id) for claim_id in out["id"]]
    verdicts, notes = [], []
    for scales, verdict, note in zip(registered, out["verdict"], out["note"]):
        note = "" if note is None or (isinstance(note, float) and math.isnan(note)) else str(note)
        if scale == "paper" or scale in scales:
            verdicts.append(verdict)
            notes.append(note)
            continue
        where = f"registered at the {'/'.join(scales)} scale; verdict in docs/CLAIMS.md section 9"
        verdicts.append("inconclusive")
        notes.append(f"{where} (here: {verdict}). {note}".strip())
    out["scale"] = ["/".join(scales) for scales in registered]
    out["verdict"], out["note"] = verdicts, notes
    return out


def to_frame(claims: list[Claim]) -> pd.DataFrame:
    return pd.DataFrame([asdict(c) for c in claims], columns=COLUMNS)


def collect(paths) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in paths if Path(p).stat().st_size > 0]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    # files written before the interval columns existed get them empty
    table = pd.concat(frames, ignore_index=True).reindex(columns=COLUMNS)
    # one spelling, the id "A".."D": papers that still write their key get it mapped
    table["paper"] = table["paper"].astype(str).map(lambda p: papers.get(p).id)
    return table


def tally(frame: pd.DataFrame) -> pd.DataFrame:
    """Verdict counts per paper (A-D order) and in total."""
    counts = pd.crosstab(frame["paper"], frame["verdict"]).reindex(columns=list(VERDICTS), fill_value=0)
    counts.insert(0, "claims", counts.sum(axis=1))
    counts.loc["all"] = counts.sum()
    counts.columns.name = None
    return counts.reset_index().rename(columns={"index": "paper"})


def unexplained(frame: pd.DataFrame) -> list[str]:
    """Ids of claims that fail or are inconclusive with no note saying why."""
    note = frame["note"].fillna("").astype(str).str.strip()
    return list(frame.loc[(frame["verdict"] != "holds") & (note == ""), "id"])


def _with_interval(value, lo, hi) -> str:
    """"value [lo, hi]" for the Markdown table (just the value when there is no interval)."""
    def num(v):
        return f"{v:.4g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)

    def missing(v):
        return v is None or (isinstance(v, float) and math.isnan(v))

    if missing(value):
        return ""
    if missing(lo) or missing(hi):
        return num(value)
    return f"{num(value)} [{num(lo)}, {num(hi)}]"


def markdown_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The claims as people read them: `value [ci_low, ci_high]` in one column."""
    shown = frame.copy()
    shown["value"] = [_with_interval(v, lo, hi) for v, lo, hi in
                      zip(frame["value"], frame["ci_low"], frame["ci_high"])]
    return shown.drop(columns=["ci_low", "ci_high"])


def write_claims(frame: pd.DataFrame, csv_path, md_path) -> None:
    """CSV for machines; Markdown for people: the tally per paper, then every claim
    (value and interval as `value [lo, hi]`)."""
    atomic_write_text(csv_path, frame.to_csv(index=False))
    if not len(frame):
        atomic_write_text(md_path, "# Claims\n\n_No claims were evaluated._\n")
        return
    counts = frame["verdict"].value_counts().to_dict()
    total = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)
    text = f"# Claims\n\n{len(frame)} claims: {total}.\n\n{tally(frame).to_markdown(index=False)}\n\n"
    missing = unexplained(frame)
    if missing:
        text += f"No note says why these fail or are inconclusive: {', '.join(missing)}.\n\n"
    atomic_write_text(md_path, text + markdown_table(frame).to_markdown(index=False) + "\n")
