"""start_job: a job's thread count reaches torch whether torch loads before or after it, and
a job that needs no torch does not import it (~3 s per job)."""
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys, types
    {before}
    from repro.jobs import start_job
    job = types.SimpleNamespace(log=[], rule="probe", threads={threads})
    start_job(job)
    print("torch imported by start_job:", "torch" in sys.modules)
    import torch
    print("threads:", torch.get_num_threads())
""")


@pytest.mark.parametrize("before", ["", "import torch"])
def test_threads_reach_torch_and_start_job_imports_no_torch(before):
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(before=before, threads=1)],
                         capture_output=True, text=True, check=True).stdout
    assert "threads: 1" in out
    assert f"torch imported by start_job: {bool(before)}" in out
