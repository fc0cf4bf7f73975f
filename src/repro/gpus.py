"""Give each GPU job of a local run its own device.

Snakemake's local ``gpu`` resource only counts: ``--resources gpu=2`` lets two jobs that
declare ``gpu=1`` run at once, but tells neither which device to use, so both would land on
``cuda:0``. Here a job claims distinct free devices before it touches CUDA:

* one lock file per device, ``gpu<id>.lock`` in a per-workflow folder (``.snakemake/gpu_locks``
  under the working directory; ``REPRO_GPU_LOCK_DIR`` overrides it, e.g. with a machine-wide
  folder when several workflows share the GPUs);
* a device is claimed by ``fcntl.flock(LOCK_EX | LOCK_NB)`` on its lock file. The kernel drops
  the lock when the file is closed, which happens when the job ends *or dies* (killed,
  crashed, out of memory): a device is never left claimed by a process that is gone;
* while the claim is held, ``CUDA_VISIBLE_DEVICES`` names only the claimed devices and the job
  uses ``cuda:0`` (its first claimed device). When CUDA was already initialised in the process
  (the variable no longer has an effect) the environment is left alone and the job gets
  ``cuda:<index>`` of its claimed device instead.

Which devices exist: ``REPRO_GPU_COUNT`` (simulated count: devices ``0..n-1``, used by the tests
on CPU-only machines) or else ``CUDA_VISIBLE_DEVICES`` when set (its entries, ids or UUIDs) or
else ``torch.cuda.device_count()`` (NVML-based, does not initialise CUDA).

No claim is made when the job asks for no GPU (``gpu=0``), when the device is named
explicitly (``cpu``, ``cuda:1``), or inside a SLURM job (``SLURM_JOB_ID`` set): there SLURM
allocates the GPUs (``--gpus``/``--gres``) and sets ``CUDA_VISIBLE_DEVICES`` itself.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # torch is imported only where a device is resolved (claiming needs none)
    import torch

log = logging.getLogger(__name__)

COUNT_ENV = "REPRO_GPU_COUNT"
LOCK_DIR_ENV = "REPRO_GPU_LOCK_DIR"
DEFAULT_LOCK_DIR = Path(".snakemake") / "gpu_locks"


class GpuClaimError(RuntimeError):
    """The GPUs a job asked for cannot be claimed (more than exist, or timed out)."""


def candidate_devices() -> list[str]:
    """Device ids a job may claim, as CUDA_VISIBLE_DEVICES would name them."""
    simulated = os.environ.get(COUNT_ENV)
    if simulated not in (None, ""):
        return [str(i) for i in range(int(simulated))]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_ENV) or DEFAULT_LOCK_DIR)


def _lock_name(device_id: str) -> str:
    return "gpu" + "".join(c if c.isalnum() or c in "-_" else "_" for c in device_id) + ".lock"


@dataclass
class GpuClaim:
    """Devices held by this process until ``release()`` (or until the process ends)."""

    ids: list[str]
    indices: list[int]  # positions of ids among the candidate devices
    _files: list = field(default_factory=list, repr=False)

    def release(self) -> None:
        for handle in self._files:
            handle.close()  # closing the file drops the flock
        self._files.clear()


def _try_lock(path: Path):
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


def claim_gpus(n: int, *, devices: list[str] | None = None, folder=None,
               timeout: float | None = None, poll: float = 0.5) -> GpuClaim:
    """Claim `n` distinct free devices, waiting (polling) until enough are free.

    `devices` defaults to ``candidate_devices()``, `folder` to ``lock_dir()``; `timeout`
    (seconds, None = wait as long as it takes) raises GpuClaimError when exceeded.
    Devices are tried in order, so a lone job always gets the first free one.
    """
    devices = candidate_devices() if devices is None else devices
    if n > len(devices):
        raise GpuClaimError(f"job asks for {n} GPU(s) but this machine has {len(devices)} "
                            f"({', '.join(devices) or 'none'}); lower the rule's gpu resource")
    folder = Path(folder or lock_dir())
    folder.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    waited = False
    while True:
        held: list[tuple[int, str, object]] = []
        for index, device in enumerate(devices):
            handle = _try_lock(folder / _lock_name(device))
            if handle is not None:
                held.append((index, device, handle))
                if len(held) == n:
                    return GpuClaim(ids=[d for _, d, _ in held], indices=[i for i, _, _ in held],
                                    _files=[h for _, _, h in held])
        for _, _, handle in held:  # not enough free: give back what we took, try again
            handle.close()
        if deadline is not None and time.monotonic() >= deadline:
            raise GpuClaimError(f"no {n} free GPU(s) among {devices} after {timeout} s "
                                f"(locks in {folder})")
        if not waited:
            log.info("waiting for %d free GPU(s) among %s (locks in %s)", n, devices, folder)
            waited = True
        time.sleep(poll)


def _needs_claim(requested: str, gpus: int) -> bool:
    if gpus <= 0 or requested not in ("auto", "cuda"):
        return False
    return "SLURM_JOB_ID" not in os.environ


@contextlib.contextmanager
def claimed_device(requested: str = "auto", gpus: int = 0, *, folder=None,
                   timeout: float | None = None) -> Iterator["torch.device"]:
    """The torch device a job should use, with `gpus` distinct devices claimed meanwhile.

    `requested` is the config's ``device`` (auto | cpu | cuda | cuda:<i>), `gpus` the job's
    ``gpu`` resource. Inside the block CUDA_VISIBLE_DEVICES names the claimed devices (when
    CUDA is not yet initialised); on exit it is restored and the devices are released.
    """
    import torch

    from .train import resolve_device

    if not _needs_claim(requested, gpus):
        yield resolve_device(requested)
        return
    devices = candidate_devices()
    if not devices:
        log.info("job asks for %d GPU(s) but none is present: using %s", gpus, resolve_device(requested))
        yield resolve_device(requested)
        return
    claim = claim_gpus(gpus, devices=devices, folder=folder, timeout=timeout)
    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    cuda_initialized = torch.cuda.is_initialized()
    try:
        if cuda_initialized:
            device = torch.device(f"cuda:{claim.indices[0]}")
            log.info("claimed GPU(s) %s; CUDA already initialised, using %s",
                     ",".join(claim.ids), device)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(claim.ids)
            device = resolve_device(requested)
            if device.type == "cuda":
                device = torch.device("cuda:0")
            log.info("claimed GPU(s) %s (CUDA_VISIBLE_DEVICES=%s), using %s",
                     ",".join(claim.ids), os.environ["CUDA_VISIBLE_DEVICES"], device)
        yield device
    finally:
        if not cuda_initialized:
            if previous is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = previous
        claim.release()


_process_claim: tuple[contextlib.AbstractContextManager, "torch.device"] | None = None


def claim_for_job(snakemake) -> "torch.device":
    """Claim the job's GPUs for the rest of this process (released when it exits).

    For ``repro.jobs.start_job``: every script then runs on its own device without
    changing the script. Later ``job_device`` calls in the same process reuse this claim.
    """
    global _process_claim
    if _process_claim is not None:
        return _process_claim[1]
    manager = job_device(snakemake)
    device = manager.__enter__()  # never exited: the claim lives as long as the process
    _process_claim = (manager, device)
    return device


def job_gpus(snakemake) -> int:
    """The job's ``gpu`` resource (0 when the rule declares none)."""
    resources = snakemake.resources
    value = resources.get("gpu", 0) if hasattr(resources, "get") else getattr(resources, "gpu", 0)
    return int(value or 0)


def job_device(snakemake, requested: str | None = None, **kwargs):
    """``claimed_device`` for a Snakemake script job: its ``params.device`` and ``gpu`` resource."""
    if _process_claim is not None:  # the job already holds its devices (claim_for_job)
        return contextlib.nullcontext(_process_claim[1])
    if requested is None:
        requested = snakemake.params.get("device", "auto") if hasattr(snakemake.params, "get") \
            else getattr(snakemake.params, "device", "auto")
    return claimed_device(str(requested), job_gpus(snakemake), **kwargs)
