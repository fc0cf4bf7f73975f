"""Paper D (break-even point): every metric against an independent exact computation in
float64 on tiny cases (dense matrices, explicit loops), one job per run giving the same records
as one per snapshot, plus tables, sweeps and claims."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.func import functional_call

from repro import io, stats
from repro.breakeven import claims as bc
from repro.breakeven import measure as bm
from repro.breakeven import plan as bp
from repro.breakeven import tables as bt
from repro.config import ConfigError
from repro.curvature import covariance_from_gram
from repro.models import build_model


@pytest.fixture(autouse=True)
def float64_one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def close(a, b, rtol=1e-7, atol=1e-10):
    return np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=rtol, atol=atol)


# ------------------------------------------------------------------ the K spectrum from a Gram matrix


def dense_covariance(phi: torch.Tensor, ddof: int = 1):
    """K = 1/(M - ddof) sum (g - gbar)(g - gbar)^T as a dense P x P matrix, eigh."""
    centred = phi - phi.mean(0, keepdim=True)
    K = torch.zeros(phi.shape[1], phi.shape[1], dtype=torch.float64)
    for g in centred:  # explicit sum of outer products
        K += torch.outer(g, g)
    K /= phi.shape[0] - ddof
    vals, vecs = torch.linalg.eigh(K)
    return K, vals.flip(0), vecs.flip(1)


def test_covariance_metrics_match_the_dense_covariance():
    gen = torch.Generator().manual_seed(0)
    M, P, top = 6, 11, 2
    phi = torch.randn(M, P, generator=gen, dtype=torch.float64) + torch.randn(P, generator=gen, dtype=torch.float64)
    out = bm.covariance_metrics(phi @ phi.T, top=top)
    K, vals, vecs = dense_covariance(phi)
    assert close(out["lambda1"], vals[0])
    assert close(out["lambda_star"], vals[M - 2])           # rank M-1 after centring
    assert vals[M - 1] < 1e-12 * vals[0]                      # the next one is zero
    assert close(out["trace"], torch.trace(K))
    assert close(out["conditioning"], vals[M - 2] / vals[0])
    assert close(out["trace_over_lambda1"], torch.trace(K) / vals[0])
    V = vecs[:, :top]
    ratios = [float(g.norm() / (V @ (V.T @ g)).norm()) for g in phi]  # raw gradients, not centred
    assert close(out["g_over_gtop"], np.mean(ratios))
    assert close(out["eigs"][:M - 1], vals[:M - 1])


def test_covariance_metrics_normalisation_and_degenerate_cases():
    phi = torch.tensor([[1.0, 0.0], [3.0, 0.0]], dtype=torch.float64)   # M = 2: one non-zero eigenvalue
    out = bm.covariance_metrics(phi @ phi.T, top=5)
    # centred: (-1, 0), (1, 0); K = (1 + 1) / (2 - 1) on the first axis
    assert close(out["lambda1"], 2.0) and close(out["trace"], 2.0) and close(out["lambda_star"], 2.0)
    # g1 = (1, 0) lies on the top eigenvector: ||g|| / ||P g|| = 1 for both gradients
    assert close(out["g_over_gtop"], 1.0) and out["n_top"] == 1
    biased = covariance_from_gram(phi @ phi.T, ddof=0)   # the 1/M normalisation: half of it
    assert close(biased["eigs"][0], 1.0)
    with pytest.raises(ValueError):
        bm.covariance_metrics(torch.ones(1, 1))


def test_covariance_metrics_of_real_gradients_match_engine_and_explicit_loop():
    from repro.curvature import grad_covariance_eigs, gradient_gram

    torch.manual_seed(0)
    model = build_model({"name": "mlp", "depth": 1, "width": 5}, (1, 2, 3), 4).double().eval()
    x, y = torch.randn(15, 1, 2, 3, dtype=torch.float64), torch.randint(0, 4, (15,))
    batches = [(x[i:i + 3], y[i:i + 3]) for i in range(0, 15, 3)]
    loss = nn.CrossEntropyLoss()
    phi = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss(model(a), b),
                                                                             list(model.parameters()))])
                       for a, b in batches])
    gram, _, _ = gradient_gram(model, loss, batches, method="loop")
    ours = bm.covariance_metrics(gram, top=2)
    _, vals, _ = dense_covariance(phi)
    engine = grad_covariance_eigs(model, loss, batches, ddof=1)
    assert close(ours["lambda1"], vals[0]) and close(ours["lambda1"], engine["eigs"][0])
    assert close(ours["lambda_star"], engine["lambda_star"]) and close(ours["trace"], engine["trace"])


# ------------------------------------------------------------------ one snapshot, every metric


def tiny_bn_cnn():
    torch.manual_seed(1)
    model = build_model({"name": "simplecnn", "widths": [2, 2], "hidden": 3, "batch_norm": True}, (1, 10, 10), 3)
    model = model.double()
    gen = torch.Generator().manual_seed(2)
    for m in model.modules():  # non-trivial running statistics and affine parameters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=gen, dtype=torch.float64))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen, dtype=torch.float64))
            m.weight.data.copy_(1 + 0.3 * torch.randn(m.num_features, generator=gen, dtype=torch.float64))
    return model.eval()


def tiny_probe(n=40):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(n, 1, 10, 10, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=gen)
    settings = dict(probe_seed=5, accuracy_examples=30, hessian_fraction=0.25, hessian_max_examples=None,
                    covariance_mode="minibatch", covariance_batches=4, covariance_batch_size=6,
                    covariance_examples=8)
    return x, y, bm.make_probe(x, y, settings)


PARAMS = dict(hessian_k=2, hessian_tol=1e-10, hessian_batch_size=4, covariance_top=2,
              alpha=dict(increase=1.2, max_alpha=1000.0, n_batches=1), bn_modes=dict(hessian="eval", covariance="eval"))


def flat_loss(model, x, y):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]

    def f(theta):
        parts, i = {}, 0
        for n, s in zip(names, shapes):
            k = int(np.prod(s))
            parts[n] = theta[i:i + k].view(s)
            i += k
        return nn.functional.cross_entropy(functional_call(model, parts, (x,)), y)
    return f, torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_measure_matches_dense_and_explicit_computations():
    model = tiny_bn_cnn()
    x, y, probe = tiny_probe()
    lr, S = 0.3, 5
    metrics, missing, cost = bm.measure(model, probe, PARAMS, lr, S)
    assert not model.training and missing == {}

    # train loss / accuracy: explicit loop over the accuracy subset
    px, py = probe["x"], probe["y"]
    acc_idx = probe["accuracy"]
    with torch.no_grad():
        correct = sum(int(model(px[i:i + 1]).argmax() == py[i]) for i in acc_idx)
        loss = np.mean([float(nn.functional.cross_entropy(model(px[i:i + 1]), py[i:i + 1])) for i in acc_idx])
    assert close(metrics["train_acc"], correct / len(acc_idx)) and close(metrics["train_loss"], loss)

    # Hessian: dense matrix of the mean loss over the Hessian subset
    f, theta = flat_loss(model, px[probe["hessian"]], py[probe["hessian"]])
    H = torch.autograd.functional.hessian(f, theta)
    eig = torch.linalg.eigvalsh(0.5 * (H + H.T)).flip(0)
    assert close(metrics["lambda1_H"], eig[0], rtol=1e-6) and close(metrics["lambda2_H"], eig[1], rtol=1e-6)
    assert close(metrics["lr_lambda1_H"], lr * eig[0], rtol=1e-6)

    # K: dense covariance of the per-batch gradients of the covariance batches
    phi = torch.stack([torch.func.grad(flat_loss(model, px[row], py[row])[0])(theta) for row in probe["covariance"]])
    K, vals, vecs = dense_covariance(phi)
    assert close(metrics["lambda1_K"], vals[0]) and close(metrics["trace_K"], torch.trace(K))
    assert close(metrics["lambda_star_K"], vals[len(phi) - 2])
    assert close(metrics["conditioning_K"], vals[len(phi) - 2] / vals[0])
    V = vecs[:, :2]
    assert close(metrics["g_over_gtop"], np.mean([float(g.norm() / (V @ (V.T @ g)).norm()) for g in phi]))

    # alpha*: brute-force scan of L(theta - alpha * lr * g) on the same mini-batch (first S
    # examples of the accuracy subset), eval mode
    bx, by = px[acc_idx[:S]], py[acc_idx[:S]]
    fb, _ = flat_loss(model, bx, by)
    step = lr * torch.func.grad(fb)(theta)
    target = 1.2 * float(fb(theta))
    with torch.no_grad():
        coarse = next(a for a in np.arange(0.05, 1000, 0.05) if float(fb(theta - a * step)) >= target)
        hit = next(a for a in np.arange(coarse - 0.05, coarse + 1e-4, 1e-4) if float(fb(theta - a * step)) >= target)
    assert 1 < hit < 1000 and abs(metrics["alpha_star"] - hit) <= 2e-3 * hit

    # ||gamma|| of the last BN layer
    last_bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)][-1]
    assert close(metrics["gamma_norm"], last_bn.weight.detach().norm())

    assert cost["hessian_products"] > 0 and cost["total_grad_equiv"] > cost["covariance_grad_equiv"] == 24


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_accuracy_pass_gives_the_numbers_of_evaluate(dtype):
    """The accuracy pass (repro.train.evaluate) forwards in chunks but sums the loss per
    group: the numbers of one forward per group, bit for bit, over several groups, a short
    last group and chunks that do not divide a group."""
    from repro.train import evaluate

    model = tiny_bn_cnn().to(dtype)
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(53, 1, 10, 10, generator=gen, dtype=dtype)
    y = torch.randint(0, 3, (53,), generator=gen)
    for group, chunk in [(20, 6), (20, 20), (1000, 250), (7, 100)]:
        one_forward = evaluate(model, x, y, group, chunk=group)
        assert bm.accuracy_and_loss(model, x, y, group=group, chunk=chunk) == one_forward
        assert evaluate(model, x, y, group, chunk) == one_forward
    assert not model.training


def flat_loss_train_mode(model, x, y):
    """The loss SGD steps on: a copy in train mode whose BN layers track no running statistics
    (torch's own batch-statistics BN, which never writes a buffer)."""
    copy = __import__("copy").deepcopy(model).train()
    for m in copy.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.track_running_stats = False
    return flat_loss(copy, x, y)


def buffers(model):
    return {k: v.clone() for k, v in model.named_buffers()}


def test_train_mode_measurement_is_the_batch_statistics_loss_and_leaves_buffers_untouched():
    model = tiny_bn_cnn()
    x, y, probe = tiny_probe()
    before, ids = buffers(model), {k: id(v) for k, v in model.named_buffers()}
    params = dict(PARAMS, bn_modes=dict(hessian="train", covariance="train"), measure_eval_mode_too=True)
    metrics, missing, cost = bm.measure(model, probe, params, 0.3, 5)
    after = dict(model.named_buffers())
    assert not model.training and set(after) == set(before)
    assert all(torch.equal(before[k], after[k]) and id(after[k]) == ids[k] for k in before)   # untouched

    px, py = probe["x"], probe["y"]
    h = probe["hessian"]
    # H in train mode: dense Hessian of the batch-statistics loss, the Hessian subset as one batch
    f, theta = flat_loss_train_mode(model, px[h], py[h])
    eig = torch.linalg.eigvalsh(torch.autograd.functional.hessian(f, theta)).flip(0)
    assert close(metrics["lambda1_H"], eig[0], rtol=1e-6) and close(metrics["lambda2_H"], eig[1], rtol=1e-6)
    # K in train mode: the gradients of each covariance mini-batch with its own statistics
    phi = torch.stack([torch.func.grad(flat_loss_train_mode(model, px[row], py[row])[0])(theta)
                       for row in probe["covariance"]])
    K, vals, _ = dense_covariance(phi)
    assert close(metrics["lambda1_K"], vals[0]) and close(metrics["trace_K"], torch.trace(K))
    # eval mode (running statistics) beside them, as the eval-mode measurement gives them
    fe, _ = flat_loss(model, px[h], py[h])
    eig_e = torch.linalg.eigvalsh(torch.autograd.functional.hessian(fe, theta)).flip(0)
    phi_e = torch.stack([torch.func.grad(flat_loss(model, px[row], py[row])[0])(theta) for row in probe["covariance"]])
    K_e, vals_e, _ = dense_covariance(phi_e)
    assert close(metrics["lambda1_H_eval"], eig_e[0], rtol=1e-6)
    assert close(metrics["lambda1_K_eval"], vals_e[0]) and close(metrics["trace_K_eval"], torch.trace(K_e))
    assert not close(metrics["lambda1_H"], metrics["lambda1_H_eval"], rtol=1e-3)   # the modes differ here
    assert cost["hessian_eval_grad_equiv"] > 0 and cost["covariance_eval_grad_equiv"] == 24
    assert all(torch.equal(before[k], v) for k, v in model.named_buffers())


def test_bn_batch_statistics_puts_the_buffers_back_when_the_block_raises():
    model = tiny_bn_cnn()
    before = buffers(model)
    with pytest.raises(RuntimeError):
        with bm.bn_batch_statistics(model):
            assert all(m.running_mean is None for m in bm.batch_norm_layers(model))
            raise RuntimeError("boom")
    assert all(torch.equal(before[k], v) for k, v in model.named_buffers())


def test_without_bn_the_two_modes_coincide():
    torch.manual_seed(4)
    model = build_model({"name": "simplecnn", "widths": [2, 2], "hidden": 3}, (1, 10, 10), 3).double().eval()
    _, _, probe = tiny_probe()
    train = dict(PARAMS, bn_modes=dict(hessian="train", covariance="train"), measure_eval_mode_too=True)
    evaluated = dict(PARAMS, bn_modes=dict(hessian="eval", covariance="eval"))
    m_train, _, cost = bm.measure(model, probe, train, 0.1, 5)
    m_eval, _, _ = bm.measure(model, probe, evaluated, 0.1, 5)
    for key in ("lambda1_H", "lambda2_H", "lambda1_K", "trace_K", "lambda_star_K"):
        assert close(m_train[key], m_eval[key], rtol=1e-9), key
    assert m_train["lambda1_H_eval"] == m_train["lambda1_H"] and m_train["lambda1_K_eval"] == m_train["lambda1_K"]
    assert m_train["trace_K_eval"] == m_train["trace_K"]
    assert "hessian_eval_grad_equiv" not in cost          # no second computation for a net without BN


PER_EXAMPLE_PROBE = dict(probe_seed=0, accuracy_examples=10, hessian_fraction=0.1, hessian_max_examples=None,
                         covariance_mode="per_example", covariance_batches=2, covariance_batch_size=2,
                         covariance_examples=7)


def test_train_mode_refuses_per_example_gradients_of_a_bn_net():
    model = tiny_bn_cnn()
    x, y, _ = tiny_probe()
    probe = bm.make_probe(x, y, PER_EXAMPLE_PROBE)
    with pytest.raises(ValueError, match="per-example"):
        bm.measure(model, probe, dict(PARAMS, bn_modes=dict(hessian="train", covariance="train")), 0.1, 4)


def test_measure_per_example_mode_is_the_example_covariance():
    model = tiny_bn_cnn()
    x, y, _ = tiny_probe()
    probe = bm.make_probe(x, y, PER_EXAMPLE_PROBE)
    metrics, _, _ = bm.measure(model, probe, PARAMS, 0.1, 4)
    _, theta = flat_loss(model, x[:1], y[:1])
    idx = probe["covariance"].reshape(-1)
    phi = torch.stack([torch.func.grad(flat_loss(model, probe["x"][i:i + 1], probe["y"][i:i + 1])[0])(theta)
                       for i in idx])
    _, vals, _ = dense_covariance(phi)
    assert close(metrics["lambda1_K"], vals[0]) and close(metrics["lambda_star_K"], vals[5])


def test_alpha_star_beyond_the_limit_is_missing_with_reason():
    model = tiny_bn_cnn()
    _, _, probe = tiny_probe()
    params = dict(PARAMS, alpha=dict(increase=1.2, max_alpha=1e-3, n_batches=1))
    metrics, missing, _ = bm.measure(model, probe, params, 1e-6, 5)
    assert "alpha_star" not in metrics and "did not reach" in missing["alpha_star"]


# ------------------------------------------------------------------ probe subsets


def test_probe_subsets_are_fixed_sized_and_point_at_the_right_examples():
    x = torch.arange(100, dtype=torch.float64).reshape(100, 1, 1, 1)
    y = torch.arange(100) % 10
    s = dict(probe_seed=7, accuracy_examples=30, hessian_fraction=0.05, hessian_max_examples=None,
             covariance_mode="minibatch", covariance_batches=3, covariance_batch_size=8, covariance_examples=4)
    a, b = bm.make_probe(x, y, s), bm.make_probe(x, y, s)
    assert all(torch.equal(a[k], b[k]) for k in ("x", "accuracy", "hessian", "covariance"))
    assert len(a["accuracy"]) == 30 and len(a["hessian"]) == 5 and a["covariance"].shape == (3, 8)
    for row in a["covariance"]:
        assert len(set(row.tolist())) == 8          # without replacement within a batch
    # positions index the stored union; the stored example is the training example it names
    for key in ("accuracy", "hessian", "covariance"):
        pos = a[key].reshape(-1)
        assert torch.equal(a["x"][pos].reshape(-1), a["train_index"][pos].to(torch.float64))
    assert len(bm.make_probe(x, y, dict(s, hessian_max_examples=2))["hessian"]) == 2
    other = bm.make_probe(x, y, dict(s, probe_seed=8))
    assert not torch.equal(other["train_index"], a["train_index"])
    with pytest.raises(ValueError, match="exceeds"):
        bm.make_probe(x, y, dict(s, covariance_batch_size=101))


# ------------------------------------------------------------------ snapshot files


def test_missing_snapshot_and_nonfinite_weights_are_recorded_with_reasons(tmp_path):
    status = tmp_path / "status.json"
    status.write_text(json.dumps({"status": "diverged", "stop_reason": "loss nan at epoch 2, step 40"}))
    out = tmp_path / "e3.json"
    rec = bm.measure_snapshot_file(tmp_path / "snapshots" / "e3.pt", status, tmp_path / "probe.pt", PARAMS, out,
                                   ids=dict(experiment="x", run="r"))
    assert rec["status"] == "missing" and "diverged" in rec["reason"] and "loss nan" in rec["reason"]
    assert json.loads(out.read_text())["status"] == "missing"

    model = build_model({"name": "mlp", "depth": 1, "width": 3}, (1, 2, 2), 3)
    state = model.state_dict()
    state["fc.weight"][0, 0] = float("nan")
    io.save_torch(dict(state_dict=state, model={"name": "mlp", "depth": 1, "width": 3}, input_shape=[1, 2, 2],
                       num_classes=3, epoch=1.0, step=5, lr=0.1, batch_size=4), tmp_path / "e1.pt")
    rec = bm.measure_snapshot_file(tmp_path / "e1.pt", status, tmp_path / "probe.pt", PARAMS, tmp_path / "e1.json")
    assert rec["status"] == "missing" and "non-finite" in rec["reason"] and rec["epoch"] == 1.0


def save_snapshot(path, model, epoch, lr=0.3, batch_size=5):
    """A snapshot file as repro.train writes it (checksummed), for a tiny SimpleCNN-BN."""
    spec = {"name": "simplecnn", "widths": [2, 2], "hidden": 3, "batch_norm": True}
    io.save_torch(dict(state_dict=model.state_dict(), model=spec, input_shape=[1, 10, 10], num_classes=3,
                       epoch=float(epoch), step=int(10 * epoch), lr=lr, batch_size=batch_size), path)


def test_one_job_per_run_gives_the_records_of_one_job_per_snapshot(tmp_path):
    """The run file holds, per expected snapshot, exactly the record a separate job writes:
    ok snapshots with the same numbers, a non-finite one and a never-reached one missing."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the snapshots are rebuilt by build_model: float64 like the test
    try:
        _, _, probe = tiny_probe()
        io.save_torch(probe, tmp_path / "probe.pt")
        snaps = tmp_path / "snapshots"
        snaps.mkdir()
        model = tiny_bn_cnn()
        save_snapshot(snaps / "e0.pt", model, 0)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        save_snapshot(snaps / "e1.pt", model, 1)
        with torch.no_grad():
            next(model.parameters()).view(-1)[0] = float("nan")
        save_snapshot(snaps / "e2.pt", model, 2)
        status = tmp_path / "status.json"
        status.write_text(json.dumps({"status": "diverged", "stop_reason": "loss nan at epoch 2.5"}))
        names, ids = ["e0", "e1", "e2", "e3"], dict(experiment="x", run="r")

        out = bm.measure_run_file(snaps, names, status, tmp_path / "probe.pt", PARAMS, tmp_path / "r.json", ids=ids)
        alone = [bm.measure_snapshot_file(snaps / f"{n}.pt", status, tmp_path / "probe.pt", PARAMS,
                                          tmp_path / f"{n}.json", ids=ids) for n in names]
    finally:
        torch.set_default_dtype(before)
    on_disk = json.loads((tmp_path / "r.json").read_text())
    assert on_disk["experiment"] == "x" and on_disk["run"] == "r"
    assert [r["snapshot"] for r in on_disk["records"]] == names
    assert [r["status"] for r in on_disk["records"]] == ["ok", "ok", "missing", "missing"]
    assert "non-finite" in on_disk["records"][2]["reason"] and "diverged" in on_disk["records"][3]["reason"]
    for batched, single in zip(on_disk["records"], alone):
        single = json.loads(json.dumps(single))         # as written: the same JSON types
        for key in ("metrics", "missing", "status", "reason", "epoch", "step", "lr", "batch_size", "probe",
                    "n_parameters", "settings", "run_status"):
            assert batched.get(key) == single.get(key), key   # exactly equal, not just close
        assert batched["cost"].keys() == single["cost"].keys()
    assert on_disk["records"][0]["metrics"] != on_disk["records"][1]["metrics"]   # two different points
    assert out["records"][0]["metrics"]["lambda1_K"] > 0
    # the tables read run files and single-snapshot files alike
    assert [r["snapshot"] for r in bt.load_records([tmp_path / "r.json", tmp_path / "e0.json"])] == names + ["e0"]


def test_a_run_job_killed_midway_leaves_no_file(tmp_path, monkeypatch):
    """The run file is written once, atomically, after the last snapshot: a failure on the
    second snapshot leaves no output (not even a partial one) behind."""
    _, _, probe = tiny_probe()
    io.save_torch(probe, tmp_path / "probe.pt")
    snaps = tmp_path / "snapshots"
    snaps.mkdir()
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        save_snapshot(snaps / "e0.pt", tiny_bn_cnn(), 0)
        save_snapshot(snaps / "e1.pt", tiny_bn_cnn(), 1)
        status = tmp_path / "status.json"
        status.write_text(json.dumps({"status": "completed"}))
        calls = []
        real = bm.measure

        def dies_second(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt("killed")
            return real(*args, **kwargs)

        monkeypatch.setattr(bm, "measure", dies_second)
        with pytest.raises(KeyboardInterrupt):
            bm.measure_run_file(snaps, ["e0", "e1"], status, tmp_path / "probe.pt", PARAMS, tmp_path / "r.json")
    finally:
        torch.set_default_dtype(before)
    assert calls == [1, 1] and not (tmp_path / "r.json").exists()
    assert not list(tmp_path.glob(".r.json*"))   # no temporary file left either


@pytest.mark.parametrize("module", ["plan", "tables", "claims"])
def test_parse_time_module_does_not_import_torch(module):
    """rules/breakeven.smk imports repro.breakeven.plan while the DAG is built: no torch.
    The table and claim jobs do not need torch either (repro.io loads it only for torch files)."""
    import subprocess
    import sys

    code = f"import sys, repro.breakeven.{module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ settings


def test_experiment_settings_merge_and_reject_bad_keys():
    paper = {"threshold_accuracy": 0.6, "probe_seed": 0, "accuracy_examples": 100, "gpu": 0, "paper_reference": [],
             "measure_eval_mode_too": True,
             "hessian": {"fraction": 0.05, "max_examples": None, "k": 5, "tol": 1e-4, "batch_size": 100,
                         "bn_mode": "train"},
             "covariance": {"mode": "minibatch", "n_batches": 25, "batch_size": 128, "n_examples": 256, "top": 5,
                            "bn_mode": "train"},
             "alpha": {"increase": 1.2, "max_alpha": 100.0, "n_batches": 1, "rtol": 0.01}}
    merged = bp.experiment_settings(paper, {"hessian": {"k": 1}, "label": "Net", "threshold_accuracy": 0.9})
    assert merged["hessian"] == dict(paper["hessian"], k=1) and merged["label"] == "Net"
    assert merged["threshold_accuracy"] == 0.9 and paper["hessian"]["k"] == 5  # not mutated
    with pytest.raises(ConfigError, match="hessian"):
        bp.experiment_settings(paper, {"hessian": {"kk": 1}})
    with pytest.raises(ConfigError, match="threshold"):
        bp.experiment_settings(paper, {"threshold": 0.5})
    assert bp.probe_params(merged)["hessian_fraction"] == 0.05 and bp.measure_params(merged)["hessian_k"] == 1
    assert bp.measure_params(merged)["bn_modes"] == dict(hessian="train", covariance="train")
    with pytest.raises(ConfigError, match="bn_mode"):
        bp.experiment_settings(paper, {"covariance": {"bn_mode": "batch"}})


# ------------------------------------------------------------------ tables, sweeps, claims


def test_threshold_epoch_and_ordered_pairs_by_hand():
    acc = pd.Series([0.1, 0.4, 0.65, 0.5, 0.9])
    ep = pd.Series([0, 0.5, 1, 2, 3])
    assert bt.threshold_epoch(acc, ep, 0.6) == 1 and math.isnan(bt.threshold_epoch(acc, ep, 0.95))
    # values 1 < 2 < 3 with metric falling except one tie: 3 pairs, 2 ordered
    good, total, bad = stats.ordered_pairs(np.array([1, 2, 3, 3]), np.array([5.0, 4.0, 4.0, 1.0]), -1)
    # pairs (1,2) (1,3) (1,3) (2,3) (2,3): ordered all but (2: 4.0, 3: 4.0) tie
    assert (good, total) == (4, 5) and bad == [(2, 4.0, 3, 4.0)]


def run_table(rows, bn=False):
    return pd.DataFrame([dict(experiment=e, run=f"lr{lr}_bs{bs}_s{s}", seed=s, model="M", lr=lr, batch_size=bs,
                              dataset="d", momentum=0.0, epochs=5, status="completed", threshold_epoch=1.0,
                              threshold_step=31.0, steps_per_epoch=31, batch_norm=bn,
                              reached_threshold=True, valid=True, note="", threshold_accuracy=0.6)
                         for e, lr, bs, s in rows])


def test_find_sweeps():
    runs = run_table([("a", lr, 128, s) for lr in (0.01, 0.1) for s in (0, 1)] + [("a", 0.01, 512, 0),
                                                                                   ("b", 0.1, 64, 0)])
    sweeps = bt.find_sweeps(runs)
    assert [(s["kind"], s["experiment"], s["fixed"], s["values"]) for s in sweeps] == [
        ("lr", "a", 128, [0.01, 0.1]), ("batch_size", "a", 0.01, [128, 512])]


def maxima_table(runs, values, steps=None):
    rows = []
    for (i, r), v in zip(runs.iterrows(), values):
        for metric in bt.MAX_METRICS.values():
            step = (steps or {}).get(r.run, 16.0)
            rows.append(dict({k: r[k] for k in bt.RUN_KEYS}, metric=metric, value=v, epoch_of_max=step / 31,
                             step_of_max=step, threshold_epoch=r.threshold_epoch, threshold_step=r.threshold_step,
                             steps_per_epoch=r.steps_per_epoch, batch_norm=r.batch_norm,
                             reached_threshold=r.reached_threshold, valid=r.valid, n_points=5, note=r.note))
    return pd.DataFrame(rows)


ETA_RUNS = [("a", lr, 128, s) for s in (0, 1, 2) for lr in (0.01, 0.03, 0.1)]


def test_claims_per_seed_ordered_fraction_by_hand():
    runs = run_table(ETA_RUNS)
    # every seed falls with eta: each seed 3/3, interval [1, 1] -> D1a holds; D2a (rises) fails
    falling = maxima_table(runs, [9.0, 5.0, 1.0, 8.5, 4.0, 1.2, 9.5, 6.0, 2.0])
    claims = {c.id: c for c in bc.breakeven_claims(falling, runs)}
    assert set(claims) == {"D1a-cnn", "D1b-cnn", "D2a-cnn", "D2b-cnn", "D3a", "D3b"}   # no S sweep: no D1c
    d1a = claims["D1a-cnn"]
    assert (d1a.value, d1a.ci_low, d1a.ci_high, d1a.verdict, d1a.n_seeds) == (1.0, 1.0, 1.0, "holds", 3)
    assert claims["D2a-cnn"].verdict == "fails" and claims["D2a-cnn"].ci_high == 0.0
    assert "bootstrap over seeds [0, 1, 2]" in d1a.interval and d1a.scale == "default"
    # seed 2 has one violation (0.03 above 0.01): fractions 1, 1, 2/3; mean 8/9; with 3 seeds
    # the interval is the range [2/3, 1] (CLAIMS.md 1.2): across 0.8 -> inconclusive
    noisy = maxima_table(runs, [9.0, 5.0, 1.0, 8.5, 4.0, 1.2, 5.0, 6.0, 2.0])
    d1a = {c.id: c for c in bc.breakeven_claims(noisy, runs)}["D1a-cnn"]
    assert d1a.value == pytest.approx(8 / 9) and d1a.ci_low == pytest.approx(2 / 3) and d1a.ci_high == 1.0
    assert d1a.verdict == "inconclusive" and "seed 2: 0.01: 5 vs 0.03: 6" in d1a.note
    # every seed has a violation: all fractions 2/3 -> fails
    bad = maxima_table(runs, [5.0, 9.0, 1.0, 4.0, 8.5, 1.2, 5.0, 6.0, 2.0])
    assert {c.id: c for c in bc.breakeven_claims(bad, runs)}["D1a-cnn"].verdict == "fails"
    # pooled over seeds instead (the old statistic) the same numbers would look ordered more often:
    # the per-seed statistic never compares runs of different seeds
    assert bc.ordered_fraction_per_seed(maxima_table(runs, [9.0, 5.0, 1.0] * 3)[lambda f: f.metric == "max_lambda1_K"],
                                        "lr", -1)[0].total.tolist() == [3, 3, 3]


def test_claims_one_per_sweep_with_bn_and_batch_size_ids():
    runs = pd.concat([run_table(ETA_RUNS), run_table([("b", lr, 128, s) for s in (0, 1, 2) for lr in (0.01, 0.1)],
                                                     bn=True),
                      run_table([("a", 0.03, bs, s) for s in (0, 1, 2) for bs in (32, 512)])], ignore_index=True)
    values = [9.0, 5.0, 1.0] * 3 + [3.0, 1.0] * 3 + [1.0, 9.0] * 3
    claims = {c.id: c for c in bc.breakeven_claims(maxima_table(runs, values), runs)}
    assert {"D1a-cnn", "D1a-bn", "D1c", "D1d", "D2c", "D2d"} <= set(claims)
    assert claims["D1a-bn"].verdict == "holds" and claims["D1a-bn"].scale == "medium"
    # the S sweep at eta = 0.03: S 32 (1.0), 128 (5.0), 512 (9.0) per seed: rises -> D1c holds
    assert claims["D1c"].value == 1.0 and claims["D1c"].verdict == "holds"
    # two eta sweeps of nets without BN: one claim each, grouped
    two = pd.concat([runs, run_table([("c", lr, 64, s) for s in (0, 1, 2) for lr in (0.01, 0.1)])], ignore_index=True)
    ids = [c.id for c in bc.breakeven_claims(maxima_table(two, values + [2.0, 1.0] * 3), two)]
    assert "D1a-cnn[a S=128]" in ids and "D1a-cnn[c S=64]" in ids and "D1a-cnn" not in ids


def test_claims_leave_out_invalid_runs_and_drop_seeds_without_a_pair():
    runs = run_table(ETA_RUNS)
    for i in (0, 1):          # seed 0 keeps one valid run only: dropped, visibly
        runs.loc[i, ["valid", "reached_threshold"]] = False
        runs.loc[i, "note"] = "never reached 60% train accuracy"
    claims = {c.id: c for c in bc.breakeven_claims(maxima_table(runs, [9.0, 5.0, 1.0, 8.5, 4.0, 1.2, 9.5, 6.0, 2.0]),
                                                   runs)}
    d1a = claims["D1a-cnn"]
    assert "left out: lr0.01_bs128_s0" in d1a.note and "seed 0 dropped" in d1a.note
    assert d1a.n_seeds == 2 and d1a.verdict == "inconclusive" and "only 2 seed(s)" in d1a.note
    runs["valid"] = False
    none = {c.id: c for c in bc.breakeven_claims(maxima_table(runs, [1.0] * 9), runs)}["D1a-cnn"]
    assert none.verdict == "inconclusive" and none.value is None


def test_pairs_that_both_peak_at_the_shared_start_are_not_compared():
    """CLAIMS.md D1, revision 2: maxima at step 0 are one measurement of the shared initial
    network; such a pair is neither ordered nor a violation."""
    runs = run_table(ETA_RUNS)
    equal = maxima_table(runs, [7.0] * 9, {r: 0.0 for r in runs.run})
    d1a = {c.id: c for c in bc.breakeven_claims(equal, runs)}["D1a-cnn"]
    assert d1a.verdict == "inconclusive" and d1a.value is None          # was "fails" (ties = not ordered)
    assert "seed 0: 3 pair(s) not compared" in d1a.note and "seed 2 dropped: no pair left" in d1a.note
    # one run per seed leaves step 0 (0.01 peaks at step 16 with 9.0 > 7.0): its 2 pairs are compared
    mixed = maxima_table(runs, [9.0, 7.0, 7.0] * 3, {r: (16.0 if r.startswith("lr0.01_") else 0.0) for r in runs.run})
    per_seed, notes = bc.ordered_fraction_per_seed(mixed[mixed.metric == "max_lambda1_K"], "lr", -1)
    assert per_seed.total.tolist() == [2, 2, 2] and per_seed.good.tolist() == [2, 2, 2]
    assert {c.id: c for c in bc.breakeven_claims(mixed, runs)}["D1a-cnn"].verdict == "holds"
    # a single run at step 0 is compared as usual (its maximum is still a value on the trajectory)
    one = maxima_table(runs, [9.0, 5.0, 1.0] * 3, {r: (0.0 if r.startswith("lr0.01_") else 16.0) for r in runs.run})
    assert bc.ordered_fraction_per_seed(one[one.metric == "max_lambda1_K"], "lr", -1)[0].total.tolist() == [3, 3, 3]


def test_early_claim_in_steps():
    runs = run_table(ETA_RUNS)
    # threshold step t = 31, one epoch = 31 steps: a peak by max(62, 62) = 62 is early
    early = {r: 60.0 for r in runs.run}
    claims = {c.id: c for c in bc.breakeven_claims(maxima_table(runs, [1.0] * 9, early), runs)}
    assert claims["D3a"].verdict == "holds" and claims["D3a"].value == 1.0
    late = dict(early, **{"lr0.01_bs128_s0": 63.0})          # seed 0: 2/3 early, others 1 -> [2/3, 1]
    d3 = {c.id: c for c in bc.breakeven_claims(maxima_table(runs, [1.0] * 9, late), runs)}["D3a"]
    assert d3.value == pytest.approx(8 / 9) and d3.verdict == "inconclusive" and "peak at step 63" in d3.note
    all_late = {r: 100.0 for r in runs.run}
    assert {c.id: c for c in bc.breakeven_claims(maxima_table(runs, [1.0] * 9, all_late), runs)}["D3a"].verdict == "fails"


def test_tables_from_records(tmp_path):
    run_rows = [dict(experiment="e", run=r, seed=0, dataset="d", model="M", lr=lr, batch_size=8, momentum=0.0,
                     epochs=2, snapshots=[0.0, 1.0, 2.0], threshold_accuracy=0.6) for r, lr in (("a", 0.1), ("b", 1.0))]
    paths, statuses = [], []
    accs = {"a": [0.1, 0.7, 0.9], "b": [0.1, 0.2]}
    lam = {"a": [1.0, 3.0, 2.0], "b": [1.0, 5.0]}
    for r in ("a", "b"):
        st = tmp_path / "runs" / "e" / r / "status.json"   # results/runs/{experiment}/{run}/status.json
        st.parent.mkdir(parents=True)
        diverged = r == "b"
        st.write_text(json.dumps(dict(status="diverged" if diverged else "completed", stop_reason="x")))
        statuses.append(st)
        for i, ep in enumerate([0.0, 1.0, 2.0]):
            p = st.parent / f"e{ep:g}.json"
            if i < len(accs[r]):
                rec = dict(experiment="e", run=r, snapshot=f"e{ep:g}", epoch=ep, step=i, status="ok", reason="",
                           metrics=dict(train_acc=accs[r][i], lambda1_K=lam[r][i]), missing={"alpha_star": "why"},
                           cost=dict(total_s=1.0))
            else:
                rec = dict(experiment="e", run=r, snapshot=f"e{ep:g}", status="missing", reason="diverged before")
            p.write_text(json.dumps(rec))
            paths.append(p)
    out = {k: tmp_path / f"{k}.txt" for k in ("trajectories", "trajectories_md", "runs", "maxima", "maxima_md",
                                              "cost")}
    ref = [dict(dataset="d", model="M", lr=0.1, batch_size=8, metric="max_lambda1_K", value=0.87)]
    frames = bt.build_tables(paths, statuses, run_rows, ref, out)
    runs = frames["runs"].set_index("run")
    assert runs.loc["a", "threshold_epoch"] == 1.0 and runs.loc["a", "valid"]
    assert not runs.loc["b", "valid"] and "diverged" in runs.loc["b", "note"] and "never reached" in runs.loc["b", "note"]
    assert runs.loc["b", "n_missing_snapshots"] == 1
    mx = frames["maxima"].set_index(["run", "metric"])
    assert mx.loc[("a", "max_lambda1_K"), "value"] == 3.0 and mx.loc[("a", "max_lambda1_K"), "epoch_of_max"] == 1.0
    assert mx.loc[("a", "max_lambda1_K"), "step_of_max"] == 1 and runs.loc["a", "threshold_step"] == 1
    assert math.isnan(mx.loc[("a", "max_lambda1_H"), "value"])
    traj = frames["trajectories"]
    gone = traj[(traj.run == "b") & (traj.metric == "all")]
    assert len(gone) == 1 and gone.value.isna().all() and gone.note.iloc[0] == "diverged before"
    assert traj[(traj.metric == "alpha_star")].value.isna().all()
    summary = frames["summary"]
    assert summary[summary.metric == "max_lambda1_K"].paper_value.tolist() == [0.87]
    assert "0.87" in (tmp_path / "maxima_md.txt").read_text()
