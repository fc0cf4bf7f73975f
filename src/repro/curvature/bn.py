"""The BatchNorm / train-eval policy of every curvature computation.

Policy (stated once, applied by every public function of :mod:`repro.curvature`):

* **Eval mode.** All curvature is computed with the model in eval mode: BatchNorm layers
  normalise with their *running* statistics, dropout is off. The loss is then a sum of
  per-example terms, so per-example gradients, Hessians of a concatenation of batches and
  the Gram-matrix tricks are all well defined. (In train mode a BN network's loss on a
  batch couples the examples of that batch, and its "Hessian" depends on how the data is cut
  into batches.)
* **Buffers are used, not differentiated.** Running means/variances (and any other
  buffers) are constants; derivatives are taken with respect to the trainable parameters
  only (``p.requires_grad``), in the order of ``model.named_parameters()``.
* **Restored.** The ``training`` flag of *every* submodule is saved before and restored
  afterwards, also when the computation raises; parameters, buffers and ``.grad`` fields are
  left untouched (gradients are taken with ``torch.autograd.grad``, never ``.backward()``).
* **No device moves.** Everything runs on the device and in the dtype of the model's
  parameters; only the data (inputs/targets) is moved to that device.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def curvature_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block; restore every submodule's mode after.

    Each submodule's own ``training`` flag is restored (a model with some submodules
    frozen in eval mode comes back exactly as it was), even if the block raises.
    """
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield model
    finally:
        for m, training in modes:
            m.training = training
