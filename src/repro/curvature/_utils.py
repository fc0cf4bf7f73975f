"""Shared plumbing: trainable parameters, flat vectors, example-weighted batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call


def trainable(model: nn.Module) -> tuple[list[str], list[nn.Parameter]]:
    """Names and tensors of the parameters curvature is taken with respect to.

    Those with ``requires_grad``, in ``model.named_parameters()`` order (shared parameters
    appear once). This order defines every flattened parameter-space vector.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no trainable parameters (requires_grad=True)")
    return [n for n, _ in named], [p for _, p in named]


def flatten(tensors: Sequence[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vec: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Split a flat vector into views shaped like ``like``."""
    out, i = [], 0
    for t in like:
        out.append(vec[i:i + t.numel()].view_as(t))
        i += t.numel()
    if i != vec.numel():
        raise ValueError(f"vector has {vec.numel()} entries, the parameters {i}")
    return out


def as_param_list(theta, names: list[str], params: list[Tensor]) -> list[Tensor]:
    """Accept a flat vector, a list of tensors or a name->tensor mapping for the parameters."""
    if isinstance(theta, Tensor):
        if theta.dim() != 1:
            raise ValueError("a flat parameter vector must be 1-D")
        vals = unflatten(theta.to(device=params[0].device, dtype=params[0].dtype), params)
    elif isinstance(theta, Mapping):
        vals = [theta[n] for n in names]
    else:
        vals = list(theta)
    if len(vals) != len(params) or any(v.shape != p.shape for v, p in zip(vals, params)):
        raise ValueError("theta does not match the shapes of the model's trainable parameters")
    return [v.detach().to(device=p.device, dtype=p.dtype) for v, p in zip(vals, params)]


def _move(t: Tensor, device: torch.device, dtype: torch.dtype | None) -> Tensor:
    if dtype is not None and t.is_floating_point():
        return t.to(device=device, dtype=dtype)
    return t.to(device)


def prepare_batches(batches, device: torch.device,
                    dtype: torch.dtype | None = None) -> tuple[list[tuple[Tensor, Tensor]], list[float]]:
    """Move batches to ``device`` (floating tensors to ``dtype`` when given, e.g. the
    parameters' dtype); weights n_b / N for the example-weighted mean loss."""
    batches = [(_move(x, device, dtype), _move(y, device, dtype)) for x, y in batches]
    if not batches:
        raise ValueError("batches is empty")
    sizes = [len(x) for x, _ in batches]
    if min(sizes) < 1:
        raise ValueError("every batch needs at least one example")
    n = float(sum(sizes))
    return batches, [s / n for s in sizes]


def check_mean_loss(loss_fn) -> None:
    red = getattr(loss_fn, "reduction", "mean")
    if red != "mean":
        raise ValueError(f"loss_fn must be mean-reduced (reduction='mean'), got reduction={red!r}")


def functional_loss(model: nn.Module, loss_fn, names: list[str]):
    """(params tuple, x, y) -> loss_fn(model_θ(x), y) with the other tensors taken from the model.

    Non-trainable parameters and buffers (BN running statistics) enter as constants.
    """
    def f(params: Sequence[Tensor], x: Tensor, y: Tensor) -> Tensor:
        return loss_fn(functional_call(model, dict(zip(names, params)), (x,)), y)
    return f


@torch.no_grad()
def weighted_loss(model: nn.Module, loss_fn, batches, weights, params=None, names=None) -> float:
    """Σ_b (n_b/N) loss_fn(model(x_b), y_b) at the model's parameters (or at ``params``)."""
    total = 0.0
    for (x, y), w in zip(batches, weights):
        out = model(x) if params is None else functional_call(model, dict(zip(names, params)), (x,))
        total += w * float(loss_fn(out, y))
    return total
