"""A throwaway single-node SLURM cluster on localhost, for the real-SLURM workflow test.

``SlurmCluster(root).start()`` writes a munge key and a minimal slurm.conf under ``root``
(accounting off, proctrack/linuxproc, task/none, select/cons_tres with CR_Core_Memory,
MinJobAge=600, one node with this machine's CPUs and memory, one default partition), then
starts munged, slurmctld and slurmd in the foreground as child processes on free ports and
waits until the node is idle. Everything (sockets, spool, state, logs, pid files) lives under
``root``, so it neither needs nor touches a system-wide munge or SLURM installation
beyond the binaries. Clients find this cluster through ``cluster.env`` (SLURM_CONF; the munge
socket is named in slurm.conf's AuthInfo). ``stop()`` cancels the cluster's jobs and
terminates exactly the three processes it started (by pid), never anything by name.

Needs root (slurmd starts jobs as their user; here SlurmUser = SlurmdUser = root) and
Debian's slurm-wlm + munge (``make system-deps``). ``SlurmUnavailable`` says why a cluster
could not be started; the test turns it into a visible skip.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "scancel", "srun")
NODE = "localhost"
PARTITION = "debug"


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be started here; the message says why."""


def which(name: str) -> str | None:
    """Like shutil.which, also looking in the sbin folders (a non-login PATH may lack them)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machine_resources() -> tuple[int, int]:
    """(CPUs, RealMemory in MB) of this machine, as slurmd -C reports them."""
    out = subprocess.run([which("slurmd"), "-C"], capture_output=True, text=True, timeout=30).stdout
    cpus = re.search(r"\bCPUs=(\d+)", out)
    mem = re.search(r"\bRealMemory=(\d+)", out)
    if not cpus or not mem:
        raise SlurmUnavailable(f"could not read CPUs/RealMemory from `slurmd -C`: {out!r}")
    return int(cpus.group(1)), int(mem.group(1))


def slurm_conf(root: Path, munge_dir: Path, cpus: int, mem_mb: int, ctld_port: int, slurmd_port: int) -> str:
    """A minimal slurm.conf for one node on localhost (DESIGN.md, "Running")."""
    return "\n".join([
        "ClusterName=repro-test",
        f"SlurmctldHost={NODE}(127.0.0.1)",
        f"SlurmctldPort={ctld_port}",
        f"SlurmdPort={slurmd_port}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={munge_dir / 'munge.socket'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "MpiDefault=none",
        "ReturnToService=2",
        "MinJobAge=600",
        "SchedulerType=sched/backfill",
        "SchedulerParameters=sched_interval=1",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=30",
        "InactiveLimit=0",
        "KillWait=5",
        f"PlugStackConfig={root / 'plugstack.conf'}",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        f"NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


class SlurmCluster:
    def __init__(self, root):
        self.root = Path(root)
        self.procs: dict[str, subprocess.Popen] = {}  # running daemons started here
        self.started: list[subprocess.Popen] = []  # every daemon ever started here
        self._tmp_munge: Path | None = None
        # Clients find this cluster through SLURM_CONF. The slurm-jobstep plugin strips every
        # SLURM_* variable (SLURM_CONF included) before its nested `srun`, which then looks for
        # /etc/slurm/slurm.conf; rather than write there, a `srun` wrapper first on PATH (PATH
        # reaches the job through sbatch --export=ALL) puts SLURM_CONF back.
        self.env = {**os.environ, "SLURM_CONF": str(self.root / "slurm.conf"),
                    "PATH": f"{self.root / 'bin'}:{os.environ.get('PATH', '')}"}

    # -- start -------------------------------------------------------------------------
    def start(self, timeout: float = 90) -> "SlurmCluster":
        missing = [b for b in BINARIES if which(b) is None]
        if missing:
            raise SlurmUnavailable(f"not installed: {', '.join(missing)} (make system-deps, as root)")
        if os.geteuid() != 0:
            raise SlurmUnavailable("slurmd must run as root to start jobs (not root here)")
        for sub in ("munge", "state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        m = self.munge_dir = self.root / "munge"
        if len(str(m / "munge.socket")) > 100:  # a Unix socket path has at most 107 bytes
            m = self.munge_dir = Path(tempfile.mkdtemp(prefix="munge-"))
            self._tmp_munge = m
        os.chmod(m, 0o711)  # clients must reach the socket
        key = m / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        (self.root / "plugstack.conf").write_text("")
        (self.root / "bin").mkdir(exist_ok=True)
        wrapper = self.root / "bin" / "srun"
        wrapper.write_text(f"#!/bin/sh\nSLURM_CONF={self.root / 'slurm.conf'} exec {which('srun')} \"$@\"\n")
        wrapper.chmod(0o755)
        cpus, mem_mb = machine_resources()
        self.cpus, self.mem_mb = cpus, mem_mb
        (self.root / "slurm.conf").write_text(
            slurm_conf(self.root, m, cpus, mem_mb, _free_port(), _free_port()))
        try:
            self._spawn("munged", [which("munged"), "-F", "--force", f"--socket={m / 'munge.socket'}",
                                   f"--key-file={key}", f"--pid-file={m / 'munged.pid'}",
                                   f"--seed-file={m / 'munged.seed'}", f"--log-file={m / 'munged.log'}"])
            self._wait(lambda: (m / "munge.socket").exists(), 20, "munged socket")
            self._spawn("slurmctld", [which("slurmctld"), "-D", "-i", "-f", str(self.root / "slurm.conf")])
            self._wait(lambda: self._ok(["scontrol", "ping"], "UP"), 30, "slurmctld to answer")
            self._spawn("slurmd", [which("slurmd"), "-D", "-N", NODE, "-f", str(self.root / "slurm.conf")])
            self._wait(self._node_idle, timeout, "the node to become idle")
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, cmd: list[str]) -> None:
        with open(self.root / "log" / f"{name}.out", "w") as out:  # -D/-F: logs go to stderr
            self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                                env=self.env, start_new_session=True)
        self.started.append(self.procs[name])

    def _ok(self, cmd, needle) -> bool:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return proc.returncode == 0 and needle in proc.stdout

    def _node_idle(self) -> bool:
        proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True,
                              env=self.env, timeout=10)
        return proc.returncode == 0 and proc.stdout.strip() == "idle"

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
            if dead:
                raise SlurmUnavailable(f"{', '.join(dead)} exited ({dead}) while waiting for {what}:\n"
                                       + self.logs())
            if ready():
                return
            time.sleep(0.5)
        raise SlurmUnavailable(f"timed out after {timeout:.0f} s waiting for {what}:\n" + self.logs())

    def logs(self, tail: int = 2000) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*.out")):
            text = path.read_text(errors="replace")
            if text.strip():
                parts.append(f"--- {path.name}\n{text[-tail:]}")
        return "\n".join(parts)

    # -- use ---------------------------------------------------------------------------
    def run(self, *cmd: str) -> str:
        return subprocess.run(list(cmd), capture_output=True, text=True, env=self.env,
                              timeout=30, check=True).stdout

    # -- stop --------------------------------------------------------------------------
    def stop(self) -> None:
        """Cancel this cluster's jobs, then stop the daemons started here (slurmd first)."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--full", "-u", "root"], env=self.env, capture_output=True, timeout=30)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()
        if self._tmp_munge is not None:
            shutil.rmtree(self._tmp_munge, ignore_errors=True)
            self._tmp_munge = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
