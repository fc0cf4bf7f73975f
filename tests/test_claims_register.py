"""The register of docs/CLAIMS.md section 2: which scale's run gives each claim its verdict."""
import re
from pathlib import Path

import pandas as pd
import pytest

from repro.claims import COLUMNS, REGISTERED_SCALES, judge_at_scale, registered_scales

ROOT = Path(__file__).resolve().parents[1]


def frame(*rows):
    return pd.DataFrame([dict(zip(["id", "verdict", "note"], r)) for r in rows]).reindex(columns=COLUMNS)


def test_a_claim_registered_elsewhere_is_inconclusive_and_says_where():
    out = judge_at_scale(frame(("A7", "holds", ""), ("B1a", "fails", "rho -0.2")), "default")
    a7, b1a = out.to_dict("records")
    assert a7["verdict"] == "inconclusive" and a7["scale"] == "medium"
    assert a7["note"].startswith("registered at the medium scale") and "(here: holds)" in a7["note"]
    assert b1a["verdict"] == "fails" and b1a["note"] == "rho -0.2" and b1a["scale"] == "default"


def test_medium_scale_judges_its_own_and_both_scale_claims_keep_verdicts():
    out = judge_at_scale(frame(("D1a-bn", "fails", ""), ("A2[iterative_single]", "holds", ""),
                               ("D1a-cnn", "holds", "")), "medium")
    assert list(out["verdict"]) == ["fails", "holds", "inconclusive"]
    assert list(out["scale"]) == ["medium", "default/medium", "default"]


def test_paper_scale_judges_every_claim():
    out = judge_at_scale(frame(("A7", "fails", ""), ("B1a", "holds", "")), "paper")
    assert list(out["verdict"]) == ["fails", "holds"]


def test_unregistered_claim_and_unknown_scale_are_errors():
    with pytest.raises(KeyError, match="not in the register"):
        registered_scales("Z9")
    with pytest.raises(ValueError, match="claims.scale"):
        judge_at_scale(frame(("A7", "holds", "")), "large")


def test_register_matches_the_protocol_table():
    """Every id in the scale table of docs/CLAIMS.md section 2 is registered there, and back."""
    text = (ROOT / "docs" / "CLAIMS.md").read_text()
    table = {}
    for scale, ids in re.findall(r"^\| (default|medium) \| (.+) \|$", text, flags=re.M):
        for claim in re.split(r"[,;]\s*", ids):
            claim = claim.split(" (")[0].split(" for ")[0].strip()
            table.setdefault(claim, set()).add(scale)
    # the protocol writes paper C's ids short (C1, C4-fwd); expand them to the emitted ids
    expanded = {}
    for claim, scales in table.items():
        if claim in ("C1", "C1u", "C2", "C3"):
            for side in ("forward", "backward"):
                expanded[f"{claim}-{side}"] = scales
        elif claim in ("C4", "C4-fwd"):
            expanded["C4-forward"] = scales
        else:
            expanded[claim] = scales
    assert {k: set(v) for k, v in REGISTERED_SCALES.items()} == expanded
