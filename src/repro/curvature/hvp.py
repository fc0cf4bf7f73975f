r"""Hessian-vector products of the example-weighted mean loss.

The object is the Hessian of

.. math::
    L(\theta) = \sum_b \frac{n_b}{N}\, \bar\ell_b(\theta), \qquad
    \bar\ell_b(\theta) = \texttt{loss\_fn}(f_\theta(X_b), y_b)

where :math:`\bar\ell_b` is the (mean-reduced) loss of batch :math:`b` with :math:`n_b`
examples and :math:`N = \sum_b n_b`. For a per-example loss this is the Hessian of the mean
loss over all :math:`N` examples, however they are cut into batches: a short last batch
weighs by its examples, not as a full batch. :math:`\theta` are the trainable parameters
(see :func:`repro.curvature._utils.trainable`), flattened in ``named_parameters`` order.
The model must be in eval mode (:func:`repro.curvature.bn.curvature_mode`).

Three ways to get :math:`Hv` (all exact, they differ in time and memory; see
docs/PERFORMANCE.md, "## Curvature", for the measured costs):

``"cached"``
    Build :math:`\nabla_\theta L` once with ``create_graph=True`` for every batch and keep
    the graphs; each product is then one backward pass through them
    (``torch.autograd.grad(g, θ, v, retain_graph=True)``). Cheapest per product; memory
    grows with the data (the double-backward graph of every batch is held).
``"fwdrev"``
    Forward-over-reverse, ``torch.func.jvp`` of ``torch.func.grad`` with ``functional_call``,
    one batch at a time. Memory of one batch; a forward and a backward pass with dual numbers
    per batch and product.
``"double_backward"``
    Reverse-over-reverse, recomputed for every product and batch.
``"auto"``
    ``"cached"`` when the measured size of the cached graphs (saved tensors of the first
    batch, scaled to all batches) fits ``cache_bytes``, else ``"fwdrev"``.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch import Tensor, nn
from torch.func import grad, jvp

from ._utils import check_mean_loss, flatten, functional_loss, prepare_batches, trainable, unflatten

HVP_METHODS = ("auto", "cached", "fwdrev", "double_backward")


def _grad(outputs, params, grad_outputs=None, **kw) -> list[Tensor]:
    """torch.autograd.grad that treats parameters (or gradients) outside the graph as zero."""
    if isinstance(outputs, Tensor):
        outputs, grad_outputs = [outputs], None if grad_outputs is None else [grad_outputs]
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs or [None] * len(outputs)) if o.requires_grad]
    if not pairs:
        return [torch.zeros_like(p) for p in params]
    outs, gos = zip(*pairs)
    return list(torch.autograd.grad(outs, params, None if grad_outputs is None else gos, allow_unused=True,
                                    materialize_grads=True, **kw))


class HessianVectorProduct:
    """Callable ``v -> H v`` on flat parameter-space vectors (dtype/device of the parameters).

    Counts the products in ``n_products``. Use it inside ``curvature_mode(model)``.
    ``release()`` drops the cached graphs.
    """

    def __init__(self, model: nn.Module, loss_fn, batches, method: str = "auto",
                 cache_bytes: float = 2 * 2**30):
        if method not in HVP_METHODS:
            raise ValueError(f"method must be one of {HVP_METHODS}, got {method!r}")
        check_mean_loss(loss_fn)
        self.model, self.loss_fn = model, loss_fn
        self.names, self.params = trainable(model)
        self.device, self.dtype = self.params[0].device, self.params[0].dtype
        self.batches, self.weights = prepare_batches(batches, self.device, self.dtype)
        self.dim = sum(p.numel() for p in self.params)
        self.n_products = 0
        self._graph: list[Tensor] | None = None
        self.cache_bytes_estimate: float | None = None
        if method == "auto":
            method = self._build_cache(cache_bytes)
        elif method == "cached":
            self._build_cache(float("inf"))
        self.method = method
        if method == "fwdrev":
            f = functional_loss(model, loss_fn, self.names)
            self._grad_fn = grad(f)

    # ------------------------------------------------------------------ cached graph
    @torch.enable_grad()
    def _build_cache(self, budget: float) -> str:
        """Gradient graphs of all batches; returns the method actually used."""
        total: list[Tensor] | None = None
        for i, ((x, y), w) in enumerate(zip(self.batches, self.weights)):
            if i == 0:
                seen: dict[int, int] = {}

                def pack(t):
                    s = t.untyped_storage()
                    seen[s.data_ptr()] = s.nbytes()
                    return t

                with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                    g = _grad(w * self.loss_fn(self.model(x), y), self.params, create_graph=True)
                self.cache_bytes_estimate = sum(seen.values()) / w  # scaled to all N examples
                if self.cache_bytes_estimate > budget:
                    return "fwdrev"
            else:
                g = _grad(w * self.loss_fn(self.model(x), y), self.params, create_graph=True)
            total = list(g) if total is None else [a + b for a, b in zip(total, g)]
        self._graph = total
        return "cached"

    def release(self) -> None:
        self._graph = None

    @torch.enable_grad()
    def mean_gradient(self) -> Tensor:
        """Flat gradient of the mean loss: read from the cached graph (no extra pass), else
        one ordinary backward pass per batch."""
        if self._graph is not None:
            return flatten(self._graph).detach()
        out = torch.zeros(self.dim, device=self.device, dtype=self.dtype)
        for (x, y), w in zip(self.batches, self.weights):
            out.add_(flatten(_grad(self.loss_fn(self.model(x), y), self.params)).detach(), alpha=w)
        return out

    # ------------------------------------------------------------------ products
    @torch.enable_grad()
    def __call__(self, v: Tensor) -> Tensor:
        """H v for a flat vector ``v`` (converted to the parameters' dtype and device)."""
        v = v.to(device=self.device, dtype=self.dtype)
        vs = unflatten(v, self.params)
        self.n_products += 1
        if self.method == "cached":
            if self._graph is None:
                raise RuntimeError("the cached graph was released")
            return flatten(_grad(self._graph, self.params, vs, retain_graph=True)).detach()
        out = torch.zeros(self.dim, device=self.device, dtype=self.dtype)
        for (x, y), w in zip(self.batches, self.weights):
            if self.method == "fwdrev":
                primals = tuple(p.detach() for p in self.params)
                with torch.no_grad():
                    _, hv = jvp(lambda ps: self._grad_fn(ps, x, y), (primals,), (tuple(vs),))
            else:  # double_backward
                g = _grad(self.loss_fn(self.model(x), y), self.params, create_graph=True)
                hv = _grad(g, self.params, vs)
            out.add_(flatten(hv).detach(), alpha=w)
        return out

    def as_linear_operator(self) -> LinearOperator:
        """SciPy LinearOperator (float64 on the NumPy side) calling this product."""
        def matvec(x: np.ndarray) -> np.ndarray:
            x = torch.as_tensor(np.asarray(x).reshape(-1), device=self.device, dtype=self.dtype)
            return self(x).detach().to("cpu", torch.float64).numpy()

        return LinearOperator((self.dim, self.dim), matvec=matvec, rmatvec=matvec, dtype=np.float64)
