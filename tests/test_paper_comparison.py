"""The papers' numbers beside ours (repro.paper_comparison) and the report pages: synthetic
tables in the paper rules' column formats, then the rules wired into a real Snakemake run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import CONFIGS, planned_jobs, snakemake
from repro import paper_comparison as pc
from repro.breakeven.tables import RUN_KEYS
from repro.claims import Claim, collect, per_group, to_frame, write_claims
from repro.heinit.tables import PER_LAYER_COLUMNS
from repro.minima.tables import SCHEDULE_COLUMNS
from repro.report_pages import paper_page

ALL = ["iterative", "minima", "heinit", "breakeven"]


# ------------------------------------------------------------------ synthetic tables

def table1(rows):
    """results/tables/iterative/table1.csv: (experiment, label, dataset, train, test) per row."""
    return pd.DataFrame([dict(experiment=e, label=lab, variant="unshared", architecture="ResNet w16 x18 blocks",
                              params=1_700_000, dataset=d, seeds=2, train_error_mean=tr, train_error_sd=0.1,
                              test_error_mean=te, test_error_sd=0.2, note="") for e, lab, d, tr, te in rows])


def blocks(experiment, label, cosines, ratios):
    rows = []
    for seed in (0, 1):
        for block, (c, r) in enumerate(zip(cosines, ratios)):
            for metric, value in (("cosine", c + 0.01 * seed), ("norm_ratio", r)):
                rows.append(dict(experiment=experiment, run=f"{label}_s{seed}", seed=seed, label=label,
                                 variant="unshared", split="test", block=block, stage=0, position=block,
                                 n_examples=100, n_cosine=100, metric=metric, value=value, note=""))
    return pd.DataFrame(rows)


def unroll(experiment, label):
    rows = []
    for seed, n in ((0, 40), (1, 60)):
        for step, loss, acc in ((0, 0.002, 0.4), (20, 0.001, 0.6)):
            ids = dict(experiment=experiment, run=f"{label}_s{seed}", seed=seed, label=label, variant="unshared",
                       scale=0.1, step=step, note="")
            rows += [dict(ids, split="train", group="all", n_examples=500, metric="loss", value=loss),
                     dict(ids, split="test", group="borderline", n_examples=n, metric="accuracy", value=acc)]
    return pd.DataFrame(rows)


def schedules(experiment, accs):
    rows = []
    for variant, values in accs.items():
        for seed, acc in enumerate(values):
            for metric, value in (("test_acc", acc), ("train_loss", 0.1)):
                rows.append(dict(experiment=experiment, run=f"{variant}_s{seed}", seed=seed, schedule=variant,
                                 kind="constant", lr=0.01, batch_size=128, status="completed", epoch=16,
                                 metric=metric, value=value, note=""))
    return pd.DataFrame(rows, columns=SCHEDULE_COLUMNS)


def per_layer(width=100, depth=10, n_samples=2000, input_dim=500, forward=1.02):
    rows = []
    for layer in range(1, depth + 1):
        for metric, mean in (("forward_ratio", forward), ("backward_ratio", 0.98)):
            rows.append(dict(sweep="paper", inputs="gaussian", init="he", width=width, depth=depth,
                             n_samples=n_samples, input_dim=input_dim, seed=0, data_seed=0, delta=0.05, layer=layer,
                             metric=metric, mean=mean, std=0.1, min=0.8, max=1.2, eps_measured=0.05, eps_std=0.01,
                             eps_max=0.2, eps_theory=3.0))
    return pd.DataFrame(rows, columns=PER_LAYER_COLUMNS)


def breakeven(dataset, experiment="breakeven_simplecnn"):
    """maxima / runs / trajectories: SimpleCNN at lr 0.1 (two valid seeds) and 0.01 (seed 1 never
    reached the threshold: left out of the mean)."""
    runs, maxima, traj = [], [], []
    for lr, seed, value, valid in ((0.1, 0, 1.0, True), (0.1, 1, 2.0, True), (0.01, 0, 4.0, True),
                                   (0.01, 1, 100.0, False)):
        ids = dict(experiment=experiment, run=f"lr{lr}_bs128_s{seed}", seed=seed, model="SimpleCNN", lr=lr,
                   batch_size=128)
        runs.append(dict(ids, dataset=dataset, status="completed", threshold_epoch=2.0 if valid else math.nan,
                         valid=valid, note="" if valid else "never reached 60% train accuracy"))
        maxima.append(dict(ids, metric="max_lambda1_K", value=value, epoch_of_max=2.0, peak_at_end=False,
                           threshold_epoch=2.0, reached_threshold=valid, valid=valid, n_points=5,
                           note="" if valid else "never reached 60% train accuracy"))
        for epoch, alpha in ((1.0, 5.0), (2.0, 1.5 + seed)):
            traj.append(dict(ids, snapshot=f"e{epoch:g}", epoch=epoch, step=0, metric="alpha_star", value=alpha,
                             note=""))
    return {"breakeven_maxima": pd.DataFrame(maxima), "breakeven_runs": pd.DataFrame(runs),
            "breakeven_trajectories": pd.DataFrame(traj)[RUN_KEYS + ["snapshot", "epoch", "step", "metric",
                                                                     "value", "note"]]}


def row(table, **eq):
    hit = pc.select(table, eq)
    assert len(hit) == 1, hit
    return hit.iloc[0]


# ------------------------------------------------------------------ units

def test_reference_is_complete_and_cited():
    ref = pd.DataFrame(pc.REFERENCE)
    assert ref.groupby("paper").size().to_dict() == {"A": 42, "B": 6, "C": 6, "D": 9}
    assert ref["ref"].str.startswith("PAPERS.md").all() and ref["paper_value"].notna().all()
    assert set(ref["source"]) <= set(pc.MEASUREMENTS)
    assert pc.eps_bound(500) == pytest.approx((1 + 4 / 500 * math.log(4 * 2000 * 10 / 0.05)) ** 10 - 1)


def test_paper_scale_values_sit_beside_the_papers():
    tables = {"iterative_table1": table1([("iterative_resnets_c10", "resnet32", "cifar10", 1.4, 7.5),
                                          ("iterative_resnets_c10", "resnet110", "cifar10", 0.3, 6.4)]),
              "iterative_blocks": blocks("iterative_resnets_c10", "resnet110", [-0.3, -0.2, -0.05], [2, 0.5, 0.3]),
              "iterative_unroll": unroll("iterative_resnets_c10", "resnet110"),
              "minima_schedules": schedules("minima_vgg11_schedules", {"cbs": [0.89, 0.91], "clr": [0.90, 0.90]}),
              "heinit_per_layer": per_layer(),
              **breakeven("cifar10")}
    out = pc.compare_rows(tables, ALL)
    assert list(out.columns) == pc.COLUMNS and len(out) == len(pc.REFERENCE)

    r = row(out, setting="ResNet-32, CIFAR-10, mean of 4 runs", quantity="train error (%)")
    assert (r.paper_value, r.our_value, r.scale) == (1.53, 1.4, "paper")
    r = row(out, setting="ResNet-32, CIFAR-100, mean of 4 runs", quantity="test error (%)")
    assert r.scale == "not run" and np.isnan(r.our_value) and "no run in the paper's setting" in r.note
    r = row(out, experiment="Cosine loss")                  # the last block, mean over seeds
    assert (r.paper_value, r.scale) == (-0.1, "paper") and r.our_value == pytest.approx(-0.045)
    r = row(out, experiment="Unrolling", quantity="borderline test accuracy after (%)")
    assert r.our_value == pytest.approx(60.0)               # pooled over seeds: (40*0.6 + 60*0.6) / 100
    assert row(out, experiment="Unrolling", quantity="borderline test examples (per run)").our_value == 50
    r = row(out, setting="VGG-11, CIFAR-10, cyclic batch size 128↔640 (stage length not stated)")
    assert (r.paper_value, r.scale, r.our_n) == (89.39, "paper", 2) and r.our_value == pytest.approx(90.0)
    assert row(out, setting="VGG-11, CIFAR-10, constant S=128, η=0.001").scale == "not run"
    r = row(out, paper="C", quantity="‖h_l‖/‖x‖, mean over layers and samples")
    assert (r.paper_value, r.our_value, r.scale) == (1.0, pytest.approx(1.02), "paper")
    r = row(out, paper="D", experiment="SimpleCNN, η sweep", setting="SimpleCNN, CIFAR-10, η=0.1, S=128",
            quantity="max λ₁ᴷ over the trajectory")
    assert (r.paper_value, r.our_value, r.our_n) == (0.87, 1.5, 2)
    r = row(out, paper="D", experiment="SimpleCNN, η sweep", setting="SimpleCNN, CIFAR-10, η=0.01, S=128",
            quantity="max λ₁ᴷ over the trajectory")
    assert r.our_value == 4.0 and r.our_n == 1 and "left out" in r.note     # the invalid seed is not averaged
    r = row(out, experiment="Step multiplier α*")          # valid runs at their threshold snapshot
    assert (r.our_value, r.our_n, r.scale) == (pytest.approx((1.5 + 2.5 + 1.5) / 3), 3, "paper")


def test_default_scale_analogue_is_labelled_and_absent_papers_say_not_run():
    tables = {"iterative_table1": table1([("iterative_resnet", "unshared", "mnist5k", 0.5, 2.0)]),
              "iterative_blocks": blocks("iterative_resnet", "unshared", [-0.1], [1.0]),
              "iterative_unroll": unroll("iterative_resnet", "unshared"),
              "heinit_per_layer": per_layer(width=32, depth=4, n_samples=64, input_dim=20),
              **breakeven("mnist5k", experiment="breakeven_cnn")}
    out = pc.compare_rows(tables, ["iterative", "heinit", "breakeven"])
    r = row(out, setting="ResNet-110, CIFAR-10, mean of 4 runs", quantity="test error (%)")
    assert (r.paper_value, r.our_value, r.scale) == (6.13, 2.0, "default")
    assert "different setting" in r.note and "mnist5k" in r.our_setting
    assert row(out, setting="ResNet-32, CIFAR-10, mean of 4 runs", quantity="test error (%)").scale == "not run"
    r = row(out, paper="D", setting="SimpleCNN, CIFAR-10, η=0.1, S=128", quantity="max λ₁ᴷ over the trajectory",
            experiment="SimpleCNN, η sweep")
    assert (r.scale, r.our_value) == ("default", 1.5)
    b = out[out["paper"] == "B"]                            # minima disabled: its rows are "not run"
    assert (b["scale"] == "not run").all() and b["our_value"].isna().all()
    assert b["note"].str.contains("not in this configuration").all()
    c = out[out["paper"] == "C"]                            # another setting and no analogue: never a value
    assert (c["scale"] == "not run").all()
    assert out.loc[out["scale"] == "not run", "our_value"].isna().all()

    md = pc.markdown(out)
    assert "## B. Three factors" in md and "89.39" in md
    line = next(line for line in md.splitlines() if "ResNet-110, CIFAR-10" in line and "test error" in line)
    assert [c.strip() for c in line.split("|")][4:7] == ["6.13", "2 ± 0.2", "default"]
    cells = [[c.strip() for c in line.split("|")] for line in md.splitlines() if line.startswith("| ")]
    assert sum(c[5] == "not run" for c in cells) == (out["scale"] == "not run").sum()


def test_missing_tables_and_empty_configuration():
    out = pc.compare_rows({}, [])
    assert (out["scale"] == "not run").all() and len(out) == len(pc.REFERENCE)
    out = pc.compare_rows({"minima_schedules": schedules("minima_schedules", {"cbs": [0.9, 0.8]})},
                          ["minima", "iterative"])
    a = out[out["paper"] == "A"]
    assert a["note"].str.startswith("table(s) not available").all()
    r = row(out, setting="VGG-11, CIFAR-10, cyclic batch size 128↔640 (stage length not stated)")
    assert (r.scale, r.our_value) == ("default", pytest.approx(85.0))


def test_claims_markdown_has_a_tally_per_paper_and_names_unexplained_verdicts(tmp_path):
    frame = to_frame([Claim("A1", "A", "s", "st", "< 0", -0.1, "holds"),
                      Claim("A2", "A", "s", "st", "> 0", -0.2, "fails"),
                      Claim("C1", "C", "s", "st", "< 1", None, "inconclusive", "no run reached the target")])
    write_claims(frame, tmp_path / "c.csv", tmp_path / "c.md")
    md = (tmp_path / "c.md").read_text()
    head = md.split("| id")[0]
    assert "3 claims: 1 holds, 1 fails, 1 inconclusive." in head
    lines = [line.replace(" ", "") for line in head.splitlines()]
    assert "|A|2|1|1|0|" in lines and "|C|1|0|0|1|" in lines and "|all|3|1|1|1|" in lines
    assert "fail or are inconclusive: A2." in head   # C1 has its note


def test_claims_markdown_prints_value_with_its_interval_and_csv_keeps_the_columns(tmp_path):
    frame = to_frame([Claim("C2", "C", "s", "st", "in [-0.7, -0.3]", -0.48, "holds", ci_low=-0.52,
                            ci_high=-0.45, interval="95% boot", n_seeds=3, scale="default"),
                      Claim("A1", "A", "s", "st", "< 0", -0.1, "holds")])
    write_claims(frame, tmp_path / "c.csv", tmp_path / "c.md")
    text = (tmp_path / "c.md").read_text()
    assert "-0.48 [-0.52, -0.45]" in text and "| -0.1 " in text
    back = pd.read_csv(tmp_path / "c.csv")
    assert list(back.columns[6:11]) == ["ci_low", "ci_high", "interval", "n_seeds", "scale"]
    assert back.loc[0, "ci_low"] == -0.52 and back.loc[0, "n_seeds"] == 3


def test_claims_collect_writes_every_paper_as_its_id(tmp_path):
    """Claims files that still name a paper by its key ("minima") or already by its id."""
    to_frame([Claim("B1", "minima", "s", "st", "< 0", -0.1, "holds")]).to_csv(tmp_path / "b.csv", index=False)
    to_frame([Claim("A1", "A", "s", "st", "< 0", 0.1, "fails", "why")]).to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "empty.csv").write_text("")
    table = collect([tmp_path / "b.csv", tmp_path / "a.csv", tmp_path / "empty.csv"])
    assert list(table["paper"]) == ["B", "A"] and list(table["id"]) == ["B1", "A1"]
    (tmp_path / "x.csv").write_text(to_frame([Claim("X1", "nopaper", "s", "st", "< 0", 0.1, "fails")])
                                    .to_csv(index=False))
    with pytest.raises(KeyError, match="unknown paper 'nopaper'"):
        collect([tmp_path / "x.csv"])


def test_per_group_suffixes_ids_only_when_there_are_several_groups():
    def evaluate(frame, op):
        value = float(frame["v"].max())
        return [Claim("B1", "B", "s", "max v", "< 0", value, "holds" if value < 0 else "fails", f"{len(frame)} rows"),
                Claim(f"B2{op}", "B", "s", "n", "> 0", float(len(frame)), "holds")]

    two = pd.DataFrame({"group": ["mnist", "digits", "mnist"], "v": [-1.0, 2.0, -3.0]})
    claims = per_group(two, "group", evaluate, op="x")
    assert [c.id for c in claims] == ["B1[mnist]", "B2x[mnist]", "B1[digits]", "B2x[digits]"]
    assert [c.value for c in claims] == [-1.0, 2.0, 2.0, 1.0]       # each group on its own rows
    assert [c.verdict for c in claims][::2] == ["holds", "fails"]
    one = two[two["group"] == "mnist"]
    assert [c.id for c in per_group(one, "group", evaluate, "x")] == ["B1", "B2x"]
    assert [c.value for c in per_group(two.drop(columns="group"), "group", evaluate, "x")] == [2.0, 3.0]
    assert [c.id for c in per_group(two.iloc[0:0], "group", lambda f, op: [], "x")] == []


def test_paper_page_shows_claims_comparison_and_settings():
    claims = to_frame([Claim("C1", "C", "stmt", "st", "< 1", 0.5, "holds"),
                       Claim("A1", "A", "other paper", "st", "< 0", 1.0, "fails", "why")])
    comparison = pc.compare_rows({"heinit_per_layer": per_layer()}, ["heinit"])
    page = paper_page("heinit", claims, comparison, pd.DataFrame(columns=["paper"]),
                      {"experiments": {}, "heinit": {"seeds": [0]}})
    assert "C. Over-parameterization" in page and '<td class="holds">holds</td>' in page
    assert "other paper" not in page and "bound_comparison.py" in page and "seeds:" in page


# ------------------------------------------------------------------ workflow

def test_rules_are_in_the_default_target(tmp_path):
    jobs = planned_jobs(tmp_path / "a", configfiles=("tiny.yaml",))        # no paper: no page
    assert jobs.get("paper_comparison") == 1 and "paper_page" not in jobs
    jobs = planned_jobs(tmp_path / "b", configfiles=("tiny_heinit.yaml",))
    assert jobs.get("paper_comparison") == 1 and jobs.get("paper_page") == 1


@pytest.mark.slow
def test_comparison_and_page_from_a_real_run(tmp_path):
    """Paper C at the authors' norm_per_layer setting (cheap: no training): its numbers reach the
    comparison, the page and the report's section."""
    cfg = yaml.safe_load((CONFIGS / "tiny_heinit.yaml").read_text())
    cfg["heinit"]["input_dim"] = 500
    cfg["heinit"]["paper"] = {"width": 100, "depth": 10, "n_samples": 2000, "inits": ["he"]}
    path = tmp_path / "authors.yaml"
    path.write_text(yaml.safe_dump(cfg))
    work = tmp_path / "w"
    snakemake(work, configfiles=(path,))
    out = pd.read_csv(work / "results/tables/paper_comparison.csv")
    c = out[(out["paper"] == "C") & (out["experiment"] == "norm_per_layer.py")]
    assert (c["scale"] == "paper").all() and np.allclose(c["our_value"], 1.0, atol=0.05)
    assert (out.loc[out["paper"] != "C", "scale"] == "not run").all()
    page = (work / "results/report/heinit.html").read_text()
    assert "C1" in page and "norm_per_layer.py" in page
    assert planned_jobs(work, configfiles=(path,)) == {}
    snakemake(work, "--report", str(work / "report.html"), configfiles=(path,))
    report = (work / "report.html").read_text()
    assert "C. He initialization" in report and "paper_comparison.md" in report


def test_table1_parameter_counts_come_from_the_papers_architectures_untrained():
    """A parameter count needs no training: the rule counts configs/paper.yaml's Table 1
    models, so these rows are filled at every scale (within 1% of the paper's counts)."""
    from repro.models import build_model, count_parameters

    specs = pc.paper_architectures(CONFIGS.parent.parent / "configs" / "paper.yaml")
    assert specs["resnet56"] == {"name": "resnet", "depth": 56, "widths": [16, 32, 64]}
    out = pc.compare_rows({"architecture_params": pc.architecture_params(specs)}, ["iterative"])
    params = out[out["quantity"] == "parameters"]
    assert len(params) == 7 and (params["scale"] == "paper").all()
    r = row(out, quantity="parameters", setting="ResNet-110-UBN (shared), CIFAR-10")
    assert r.our_value == count_parameters(build_model(specs["resnet110_ubn"], (3, 32, 32), 10))
    assert np.allclose(params["our_value"], params["paper_value"], rtol=0.01)
    assert (out.loc[out["quantity"] != "parameters", "scale"] == "not run").all()  # nothing else invented
