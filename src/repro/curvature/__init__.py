"""Curvature of the training loss (papers B and D).

Every function takes ``(model, loss_fn, batches)``: a ``torch.nn.Module``, a mean-reduced loss
such as ``torch.nn.CrossEntropyLoss()`` and a list of ``(inputs, targets)``. The loss is the
example-weighted mean over all examples of all batches. The model is used in eval mode and
restored afterwards (policy in :mod:`repro.curvature.bn`); nothing is moved between devices.

- :func:`hessian_eigs`: top-k Hessian eigenvalues, Lanczos (SciPy ``eigsh``) on HVPs, with
  ARPACK's tolerance test applied after every product (:mod:`.ritz`).
- :func:`hessian_trace`: Hutchinson estimate of Tr(H) with its standard error.
- :func:`grad_covariance_eigs`: spectrum, trace and λ_* of the gradient covariance K.
- :func:`covariance_from_gram`: the same from a Gram matrix of gradients already computed
  (the one place K's centring and 1/M or 1/(M−1) normalisation are written), and
  :func:`projections_on_top_eigenvectors` of the raw gradients on K's top eigenvectors.
- :func:`step_sharpness_alpha`: the break-even paper's α*.
"""

from .bn import curvature_mode
from .gradient_covariance import (
    covariance_from_gram,
    grad_covariance_eigs,
    gradient_gram,
    projections_on_top_eigenvectors,
)
from .hessian import hessian_eigs
from .hvp import HessianVectorProduct
from .step_alpha import step_sharpness_alpha
from .trace import hessian_trace

__all__ = [
    "HessianVectorProduct",
    "covariance_from_gram",
    "curvature_mode",
    "grad_covariance_eigs",
    "gradient_gram",
    "hessian_eigs",
    "hessian_trace",
    "projections_on_top_eigenvectors",
    "step_sharpness_alpha",
]
