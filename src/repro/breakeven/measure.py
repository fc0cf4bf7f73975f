r"""Paper D measurements: the probe subsets and the metrics of every snapshot of a run.

The torch side of paper D (rules breakeven_probe and breakeven_curvature); the settings
are in :mod:`repro.breakeven.plan` (imported while the workflow is parsed: no torch), the
tables, claims and figures in the package's tables, claims and figures modules.

1. ``make_probe_file`` (one job per experiment): fixed random subsets of the training set,
   the same for every run and snapshot of the experiment, drawn from ``probe_seed``:
   the accuracy subset (``accuracy_examples``; also the source of the alpha* mini-batches),
   the Hessian subset (``hessian.fraction`` of the training set, paper: 5%) and the
   covariance batches (``covariance.n_batches`` mini-batches of ``covariance.batch_size``
   examples, each drawn without replacement, independently of each other; or
   ``covariance.n_examples`` single examples in ``per_example`` mode). Only the union of the
   examples is stored, with index lists, so a measurement job never loads the dataset.
2. ``measure_run_file`` (one job per run): the metrics of every saved snapshot of the run,
   one record per snapshot with its settings and its cost, written once at the end (one
   atomic JSON file: a job killed midway leaves nothing that looks complete). One job per
   run instead of one per snapshot: a job's start (Python, torch, pandas) cost ~3 s, most of
   a snapshot's measurement at the default scale (docs/PERFORMANCE.md "Paper D"). A
   snapshot's record is the same whether it is measured alone (``measure_snapshot_file``)
   or with its run (tested).

   BatchNorm mode (docs/CLAIMS.md section 6, "BN mode"). K and H are measured in the mode
   set by ``covariance.bn_mode`` and ``hessian.bn_mode`` (pre-registered: ``train``): in
   ``train`` mode every BN layer normalises with the statistics of the batch it is given,
   as SGD computes its gradients (each covariance mini-batch is one batch; the Hessian
   subset is one batch), and its running statistics are set aside and put back unchanged
   (:func:`bn_batch_statistics`); in ``eval`` mode BN uses its running statistics
   (repro.curvature's policy). With ``measure_eval_mode_too`` the eval-mode values are
   recorded as well (``lambda1_H_eval``, ``lambda1_K_eval``, ``trace_K_eval``); for a net
   without BN the two modes are the same computation, so the eval values are copies (a
   test checks that they coincide). Train accuracy, alpha* and the gamma norm use eval mode.

   ===================  =====================================================================
   metric               definition
   ===================  =====================================================================
   train_loss/acc       mean cross-entropy / accuracy on the accuracy subset
   lambda{i}_H          top-k eigenvalues of the Hessian of the mean loss over the Hessian
                        subset, Lanczos (repro.curvature.hessian_eigs, tol from settings),
                        BN in ``hessian.bn_mode``
   lambda1_K            top eigenvalue of K = 1/(M-1) sum_m (g_m - gbar)(g_m - gbar)^T, the
                        unbiased estimate of the covariance from the M sampled
                        covariance-batch gradients (mini-batch mode: the
                        covariance of 128-example mini-batch gradients, ~ K_example / 128, as
                        in the paper; per-example mode: K itself), BN in
                        ``covariance.bn_mode``
   *_eval               lambda1_H, lambda1_K, trace_K with BN in eval mode (running
                        statistics), with ``measure_eval_mode_too``
   lambda_star_K        smallest non-zero eigenvalue of K: the (M-1)-th (rank M-1 after
                        centring)
   trace_K              Tr(K)
   conditioning_K       lambda_star_K / lambda1_K (Conjecture 2's ratio)
   trace_over_lambda1_K Tr(K) / lambda1_K (the submission's proxy)
   g_over_gtop          mean over the M gradients of ||g_m|| / ||P_top g_m||, P_top the
                        projection on the top-``covariance.top`` eigenvectors of K (paper:
                        ||g||/||g_5||)
   alpha_star           the smallest alpha with L(theta - alpha (theta - theta')) >= 1.2 L(theta)
                        (repro.curvature.step_sharpness_alpha), theta' = theta after one SGD
                        step with the snapshot's (lr, S) on a fixed mini-batch of S examples of
                        the accuracy subset, L = the loss on that mini-batch; mean over
                        ``alpha.n_batches`` mini-batches
   gamma_norm           ||gamma|| of the last BatchNorm layer (BN networks only)
   lr_lambda1_H         lr * lambda1_H; the full-batch break-even point is lr * lambda1_H = 2
   ===================  =====================================================================

   The eigenvalues of K are computed from the engine's M x M Gram matrix of the gradients
   (repro.curvature.gradient_gram) by :func:`covariance_metrics`, through
   repro.curvature.covariance_from_gram(..., ddof=1) (the formula grad_covariance_eigs uses
   too), and the projections for g_over_gtop come from the same Gram matrix
   (repro.curvature.projections_on_top_eigenvectors), so the gradients are computed once.
   A snapshot that does not exist (its run diverged earlier) or has non-finite weights is
   recorded with ``status: missing`` and the reason; a metric that cannot be computed (e.g.
   alpha* beyond ``alpha.max_alpha``) is missing with its reason, never a number. A snapshot
   file that fails its checksum fails the job (no number from a corrupt file).

Cost of a trajectory point, in example-gradient equivalents (one forward + backward pass of
one example; a forward-only pass counted as 1/3, a Hessian-vector product as 2): accuracy
n_acc/3, covariance M x batch_size, Hessian n_H (1 + 2 x products), alpha* S per mini-batch
plus S/3 per loss evaluation on the line. Each record also holds the wall-clock seconds of
every part.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import io
from ..curvature import (
    covariance_from_gram,
    curvature_mode,
    gradient_gram,
    hessian_eigs,
    projections_on_top_eigenvectors,
    step_sharpness_alpha,
)
from ..data import load_dataset
from ..runs import RunRecord
from ..train import FORWARD_CHUNK, evaluate, load_model

# K of paper D's measurement: the unbiased 1/(M - 1) estimate from M sampled gradients
COVARIANCE_DDOF = 1
# the accuracy subset's loss is summed per group of this many examples (repro.train.evaluate's
# batch_size, as in training), its logits computed FORWARD_CHUNK examples per forward
ACCURACY_GROUP, ACCURACY_CHUNK = 1000, FORWARD_CHUNK


def make_probe(x_train: torch.Tensor, y_train: torch.Tensor, probe: dict) -> dict:
    """Fixed random subsets of the training set (see the module docstring), union stored once."""
    n = len(y_train)
    gen = torch.Generator().manual_seed(int(probe["probe_seed"]))
    acc = torch.randperm(n, generator=gen)[:min(n, probe["accuracy_examples"])]
    n_h = max(1, int(round(probe["hessian_fraction"] * n)))
    if probe.get("hessian_max_examples"):
        n_h = min(n_h, probe["hessian_max_examples"])
    hess = torch.randperm(n, generator=gen)[:n_h]
    if probe["covariance_mode"] == "minibatch":
        size = probe["covariance_batch_size"]
        if size > n:
            raise ValueError(f"covariance.batch_size={size} exceeds the {n} training examples")
        cov = torch.stack([torch.randperm(n, generator=gen)[:size] for _ in range(probe["covariance_batches"])])
    else:
        m = probe["covariance_examples"]
        if m > n:
            raise ValueError(f"covariance.n_examples={m} exceeds the {n} training examples")
        cov = torch.randperm(n, generator=gen)[:m].reshape(-1, 1)
    union = torch.unique(torch.cat([acc, hess, cov.reshape(-1)]))  # sorted
    pos = lambda idx: torch.searchsorted(union, idx)  # noqa: E731
    return dict(x=x_train[union].contiguous(), y=y_train[union].contiguous(), train_index=union,
                accuracy=pos(acc), hessian=pos(hess), covariance=pos(cov), n_train=n, settings=dict(probe))


def make_probe_file(dataset: dict, probe: dict, out_path, data_root="data", download=False) -> dict:
    """Load the experiment's dataset (as training does) and save its probe subsets."""
    data = load_dataset(dataset["dataset"], data_root, download, test_fraction=dataset.get("test_fraction", 0.2),
                        train_size=dataset.get("train_size"))
    payload = make_probe(data.x_train, data.y_train, probe)
    payload["dataset"] = dict(dataset)
    io.save_torch(payload, out_path)
    return payload


# ---------------------------------------------------------------------- measurement


def covariance_metrics(gram: torch.Tensor, top: int = 5) -> dict:
    r"""Spectrum of paper D's K (1/(M-1), :data:`COVARIANCE_DDOF`) and ||g||/||g_top|| from
    the uncentred Gram matrix G = Phi Phi^T (M x M) of the M covariance-batch gradients.

    ||g_m||^2 = G_mm and the projections of the raw gradients on K's top eigenvectors come
    from G too (repro.curvature.projections_on_top_eigenvectors): no parameter-space vector.
    Only eigenvalues above 1e-12 lambda1 count as top directions.
    """
    G = gram.to(torch.float64)
    M = G.shape[0]
    if M < 2:
        raise ValueError(f"need at least 2 gradients, got {M}")
    spectrum = covariance_from_gram(G, ddof=COVARIANCE_DDOF, eigenvectors=True)
    vals = spectrum["eigs"]
    lam1, lam_star, trace = float(vals[0]), spectrum["lambda_star"], spectrum["trace"]
    tiny = 1e-12 * max(abs(lam1), 1e-300)
    n_top = int(min(top, int((vals > tiny).sum())))
    if n_top:
        proj = projections_on_top_eigenvectors(G, spectrum, n_top).pow(2).sum(0)
        norms = torch.diagonal(G).clamp_min(0)
        ratios = torch.sqrt(norms / proj.clamp_min(1e-300))
        g_ratio = float(ratios.mean())
    else:
        g_ratio = math.nan
    return dict(eigs=vals, lambda1=lam1, lambda_star=lam_star, trace=trace, n_gradients=M, n_top=n_top,
                conditioning=lam_star / lam1 if lam1 > 0 else math.nan,
                trace_over_lambda1=trace / lam1 if lam1 > 0 else math.nan, g_over_gtop=g_ratio)


def batch_norm_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextmanager
def bn_batch_statistics(model: nn.Module):
    """BatchNorm normalises with the statistics of each batch it sees (training-mode BN, the
    loss SGD steps on) while the model stays in eval mode otherwise, and no running
    statistic is read or updated: they are taken out for the block and put back, the same
    tensors, even if the block raises. (torch's BN uses batch statistics whenever its
    running mean and variance are None, and then updates nothing.)"""
    saved = [(m, m.running_mean, m.running_var) for m in batch_norm_layers(model) if m.track_running_stats]
    try:
        for m, _, _ in saved:
            m.running_mean, m.running_var = None, None
        yield model
    finally:
        for m, mean, var in saved:
            m.running_mean, m.running_var = mean, var


@contextmanager
def bn_mode(model: nn.Module, mode: str):
    """``train``: :func:`bn_batch_statistics`; ``eval``: BN with its running statistics."""
    if mode not in ("train", "eval"):
        raise ValueError(f"bn_mode must be 'train' or 'eval', got {mode!r}")
    if mode == "train":
        with bn_batch_statistics(model):
            yield model
    else:
        yield model


def covariance_in_mode(model: nn.Module, batches, top: int, mode: str) -> tuple[dict, str]:
    """K's spectrum from the covariance mini-batches with BN in ``mode`` (one gradient per
    batch, as SGD computes it); (covariance_metrics, Gram method used)."""
    if mode == "train" and batch_norm_layers(model) and any(len(x) < 2 for x, _ in batches):
        raise ValueError("BN in train mode needs covariance batches of >= 2 examples (covariance.mode: "
                         "minibatch); per-example gradients of a BN net exist only in eval mode")
    # "auto": the layer-wise "gram" path for single examples and small batches, one
    # autograd.grad per batch ("loop") from 16 examples (measured crossover, LOOP_MIN_BATCH)
    with curvature_mode(model), bn_mode(model, mode):
        gram, method, _ = gradient_gram(model, nn.CrossEntropyLoss(), batches, method="auto")
    return covariance_metrics(gram, top=top), method


def hessian_in_mode(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: dict, mode: str,
                    info: dict) -> torch.Tensor:
    """Top-k Hessian eigenvalues of the mean loss over (x, y) with BN in ``mode``; in train
    mode the subset is one batch (its batch statistics), whatever hessian_batch_size."""
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    k = min(params["hessian_k"], n_params - 1)
    size = len(x) if mode == "train" and batch_norm_layers(model) else params["hessian_batch_size"]
    with bn_mode(model, mode):
        return hessian_eigs(model, nn.CrossEntropyLoss(), _chunks(x, y, size), k=k, tol=params["hessian_tol"],
                            info=info)


def last_bn_gamma_norm(model: nn.Module) -> float | None:
    """||gamma|| of the last BatchNorm layer in module order (None without BN)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None]
    return float(bns[-1].weight.detach().norm()) if bns else None


def accuracy_and_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, group: int = ACCURACY_GROUP,
                      chunk: int = ACCURACY_CHUNK) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over (x, y) in eval mode: ``repro.train.evaluate``
    (loss summed per group of ``group`` examples, logits ``chunk`` examples per forward),
    every submodule's mode restored after."""
    with curvature_mode(model):
        return evaluate(model, x, y, group, chunk)


def _chunks(x: torch.Tensor, y: torch.Tensor, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


def sgd_step_params(model: nn.Module, loss_fn, batch, lr: float) -> list[torch.Tensor]:
    """theta' = theta - lr * grad L_batch(theta), the gradient in eval mode (curvature policy)."""
    params = [p for p in model.parameters() if p.requires_grad]
    with curvature_mode(model), torch.enable_grad():
        x, y = batch
        grads = torch.autograd.grad(loss_fn(model(x), y), params)
    return [(p - lr * g).detach() for p, g in zip(params, grads)]


def measure(model: nn.Module, probe: dict, params: dict, lr: float, batch_size: int) -> tuple[dict, dict, dict]:
    """All metrics of one snapshot: (metrics, missing reasons, cost). See the module docstring."""
    device = next(model.parameters()).device
    x, y = probe["x"].to(device), probe["y"].to(device)
    loss_fn = nn.CrossEntropyLoss()   # accuracy and alpha* (eval mode)
    metrics, missing, cost, wall = {}, {}, {}, {}

    t = time.perf_counter()
    acc_idx = probe["accuracy"].to(device)
    metrics["train_loss"], metrics["train_acc"] = accuracy_and_loss(model, x[acc_idx], y[acc_idx])
    wall["accuracy"] = time.perf_counter() - t
    cost["accuracy"] = len(acc_idx) / 3.0

    modes = params["bn_modes"]          # {"hessian": "train" | "eval", "covariance": ...}
    has_bn = bool(batch_norm_layers(model))
    eval_too = params.get("measure_eval_mode_too", False)

    t = time.perf_counter()
    cov_idx = probe["covariance"].to(device)
    batches = [(x[row], y[row]) for row in cov_idx]
    cov, method = covariance_in_mode(model, batches, params["covariance_top"], modes["covariance"])
    metrics.update(lambda1_K=cov["lambda1"], lambda_star_K=cov["lambda_star"], trace_K=cov["trace"],
                   conditioning_K=cov["conditioning"], trace_over_lambda1_K=cov["trace_over_lambda1"],
                   g_over_gtop=cov["g_over_gtop"])
    wall["covariance"] = time.perf_counter() - t
    cost["covariance"] = float(cov_idx.numel())
    if eval_too:     # for a net without BN both modes are one computation: the values are copies
        t = time.perf_counter()
        if has_bn and modes["covariance"] != "eval":
            cov, _ = covariance_in_mode(model, batches, params["covariance_top"], "eval")
            cost["covariance_eval"] = float(cov_idx.numel())
        metrics.update(lambda1_K_eval=cov["lambda1"], trace_K_eval=cov["trace"])
        wall["covariance_eval"] = time.perf_counter() - t

    t = time.perf_counter()
    h_idx = probe["hessian"].to(device)
    info: dict = {}
    eigs = hessian_in_mode(model, x[h_idx], y[h_idx], params, modes["hessian"], info)
    for i, value in enumerate(eigs.tolist(), start=1):
        metrics[f"lambda{i}_H"] = value
    metrics["lr_lambda1_H"] = lr * metrics["lambda1_H"]
    wall["hessian"] = time.perf_counter() - t
    cost["hessian"] = len(h_idx) * (1 + 2 * info.get("n_products", 0))
    cost["hessian_products"] = info.get("n_products")
    if eval_too:
        t = time.perf_counter()
        if has_bn and modes["hessian"] != "eval":
            einfo: dict = {}
            metrics["lambda1_H_eval"] = float(hessian_in_mode(model, x[h_idx], y[h_idx], params, "eval", einfo)[0])
            cost["hessian_eval"] = len(h_idx) * (1 + 2 * einfo.get("n_products", 0))
        else:
            metrics["lambda1_H_eval"] = metrics["lambda1_H"]
        wall["hessian_eval"] = time.perf_counter() - t

    t = time.perf_counter()
    ap = params["alpha"]
    alphas, evals = [], 0
    for j in range(ap["n_batches"]):
        idx = acc_idx[torch.arange(j * batch_size, (j + 1) * batch_size, device=device) % len(acc_idx)]
        batch = (x[idx], y[idx])
        ainfo: dict = {}
        alphas.append(step_sharpness_alpha(model, loss_fn, [batch], sgd_step_params(model, loss_fn, batch, lr),
                                           threshold=ap["increase"], alpha_max=ap["max_alpha"],
                                           rtol=ap.get("rtol", 1e-3), info=ainfo))
        evals += ainfo.get("n_evals", 0) + 1          # + the loss at theta
    if all(math.isfinite(a) for a in alphas):
        metrics["alpha_star"] = float(np.mean(alphas))
    else:
        missing["alpha_star"] = (f"the loss did not reach {ap['increase']} x L(theta) along the step "
                                 f"up to alpha = {ap['max_alpha']:g}")
    wall["alpha"] = time.perf_counter() - t
    # one gradient per mini-batch + the forward-only loss evaluations along the line
    cost["alpha"] = batch_size * (ap["n_batches"] + evals / 3.0)

    gamma = last_bn_gamma_norm(model)
    if gamma is not None:
        metrics["gamma_norm"] = gamma

    for name, value in list(metrics.items()):
        if value is None or not math.isfinite(value):
            missing[name] = f"non-finite value ({value})"
            del metrics[name]
    products = cost.pop("hessian_products")
    out = {f"{k}_grad_equiv": v for k, v in cost.items()}
    out["total_grad_equiv"] = sum(cost.values())
    out.update({f"{k}_s": v for k, v in wall.items()}, total_s=sum(wall.values()), hessian_products=products,
               covariance_method=method)
    return metrics, missing, out


def snapshot_record(snapshot_path, status: RunRecord, probe, params: dict, device="cpu",
                    ids: dict | None = None) -> dict:
    """The record of one snapshot: status ok with its metrics, or missing with the reason.

    ``probe`` is the loaded probe payload or a callable returning it (called only when the
    snapshot is measured, so a run that diverged before its first snapshot loads nothing).
    """
    snapshot_path = Path(snapshot_path)
    record = dict(ids or {}, snapshot=snapshot_path.stem, run_status=status.status, settings=params,
                  status="ok", reason="", metrics={}, missing={}, cost={})
    if not snapshot_path.exists():
        record.update(status="missing", reason=f"no snapshot {snapshot_path.name}: the run {status.status} "
                                               f"({status.stop_reason}) before reaching it")
        return record
    model, payload = load_model(snapshot_path, device=device)
    record.update(epoch=float(payload["epoch"]), step=int(payload["step"]), lr=float(payload["lr"]),
                  batch_size=int(payload["batch_size"]))
    if not all(torch.isfinite(p).all() for p in model.state_dict().values() if p.is_floating_point()):
        record.update(status="missing", reason="the snapshot holds non-finite weights")
        return record
    probe = probe() if callable(probe) else probe
    metrics, missing, cost = measure(model, probe, params, payload["lr"], payload["batch_size"])
    record.update(metrics=metrics, missing=missing, cost=cost,
                  n_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
                  probe=dict(n_hessian=len(probe["hessian"]), covariance_shape=list(probe["covariance"].shape),
                             n_accuracy=len(probe["accuracy"]), n_train=probe["n_train"]))
    return record


def measure_snapshot_file(snapshot_path, status_path, probe_path, params: dict, out_path,
                          device="cpu", ids: dict | None = None) -> dict:
    """Measure one snapshot and write its record as JSON (the reference for the run job)."""
    status = RunRecord.read(status_path)
    record = snapshot_record(snapshot_path, status, lambda: io.load_torch(probe_path, map_location=device),
                             params, device, ids)
    io.atomic_write_json(out_path, record)
    return record


def measure_run_file(snapshot_dir, snapshot_names, status_path, probe_path, params: dict, out_path,
                     device="cpu", ids: dict | None = None, log=None) -> dict:
    """Measure every expected snapshot of a run (in the given order) and write one JSON file,
    ``{**ids, "records": [one snapshot_record per name]}``, atomically once all are done."""
    status = RunRecord.read(status_path)
    cache: dict = {}

    def probe():
        if "probe" not in cache:        # loaded once per run, on first use
            cache["probe"] = io.load_torch(probe_path, map_location=device)
        return cache["probe"]

    records = []
    for name in snapshot_names:
        rec = snapshot_record(Path(snapshot_dir) / f"{name}.pt", status, probe, params, device, ids)
        records.append(rec)
        if log is not None:
            log.info("%s: %s %s cost %s", name, rec["status"], rec["reason"] or rec["metrics"], rec["cost"])
    out = dict(ids or {}, records=records)
    io.atomic_write_json(out_path, out)
    return out
