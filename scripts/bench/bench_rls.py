"""Benchmark (i): RLS/FORCE fitting (CURBD), our torch core vs the published per-step numpy loop.

One epoch of data-constrained RNN fitting as in CURBD (Perich et al., ``trainMultiRegionRNN``,
'rates' mode): 500 units, 2,000 steps, one RLS update of ``J`` and ``P`` per step, ``P0 = 1``,
``g = 1.5``, ``τ = dt`` (so the per-step error is CURBD's ``tanh(JR) − A`` in both), float64,
one thread, CPU. The target activity: 500 units of a chaotic teacher network (seeded).

- **numpy per-step loop** (the baseline): the algorithm as published, written here in the
  style of CURBD's code: numpy arrays, per step ``r = tanh(H)``, ``JR = J r``,
  ``H ← H + dt/τ (−H + JR)``, ``err = tanh(JR) − A_t``, ``k = P r``, ``c = 1/(1 + rᵀk)``,
  ``P ← P − c k kᵀ``, ``J ← J − c err kᵀ``.
- **torch, B = 1** (ours): :func:`neurosim.fit._rls.force_epoch` on one trial, the same
  update done in place (``addr_``); must give the same ``J``: max ``|ΔJ|`` is reported beside
  the algorithm's own rounding floor (the numpy loop against itself with ``J r`` summed in
  another order) and must stay within 10x of it.
- **torch, B = 8** (ours): 8 trials stepped in parallel sharing ``J`` and ``P``, one exact
  block (Woodbury) update per step; cost per trial-step compared with the loop's.
- On a machine with CUDA, the same two rows on the GPU (float64 and float32).

Both run after ``mallopt`` pins glibc's trim and mmap thresholds (see ``_keep_freed_memory``),
so the numpy loop's per-step 2 MB temporaries are not page-faulted in again every step: the
baseline at its best.

Target: no slower than numpy on the CPU (ratio >= 1), >= 10x on a GPU.

Run ``python scripts/bench/bench_rls.py [--quick] [--units N] [--steps T] [--json PATH]``
(``--quick``: 300 steps).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import environment, parse_args, print_table, set_threads, timeit, write_json

N_UNITS, N_STEPS, BATCH, G, P0 = 500, 2_000, 8, 1.5, 1.0
TARGET_CPU, TARGET_GPU = 1.0, 10.0
BASELINE = "numpy per-step loop (CURBD)"


def make_data(n: int, t: int, b: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``b`` trials ``[b, t, n]`` of a chaotic teacher network's rates (×0.95) and ``J0``.

    The teacher (``g = 1.5``, ``dt/τ = 0.1``, random initial states) makes smooth trajectories
    a network of the same size can learn, as CURBD's data are meant to be.
    """
    rng = np.random.default_rng(seed)
    j_teacher = G * rng.normal(size=(n, n)) / np.sqrt(n)
    data = np.empty((b, t, n))
    for i in range(b):
        h = rng.normal(size=n)
        for s in range(t):
            h = h + 0.1 * (-h + j_teacher @ np.tanh(h))
            data[i, s] = 0.95 * np.tanh(h)
    return data, G * rng.normal(size=(n, n)) / np.sqrt(n)


def curbd_numpy(a: np.ndarray, j0: np.ndarray, alpha: float = 1.0, reorder: bool = False):
    """The published per-step loop, one trial ``a [T, N]``; returns the final ``J``.

    ``reorder`` sums ``J r`` in another order (``(J * r).sum(1)``): the spread between the two
    is the algorithm's own sensitivity to rounding, the floor for comparing ``J``.
    """
    j, p = j0.copy(), P0 * np.eye(j0.shape[0])
    h = np.arctanh(np.clip(a[0], -0.999, 0.999))
    for t in range(1, a.shape[0]):
        r = np.tanh(h)
        jr = (j * r).sum(1) if reorder else j.dot(r)
        h = h + alpha * (-h + jr)
        err = np.tanh(jr) - a[t]
        k = p.dot(r)
        c = 1.0 / (1.0 + r.dot(k))
        p = p - c * np.outer(k, k)
        j = j - c * np.outer(err, k)
    return j


def torch_epoch(data: np.ndarray, j0: np.ndarray, device: str, dtype: Any) -> Any:
    """One epoch of :func:`force_epoch` (no bias, no inputs) on ``data [B, T, N]``."""
    import torch

    from neurosim.fit._rls import RecursiveLeastSquares, force_epoch

    a = torch.as_tensor(data, dtype=dtype, device=device)
    w = torch.as_tensor(j0, dtype=dtype, device=device).clone()
    force_epoch(RecursiveLeastSquares(w, p0=P0), a, alpha=1.0, bias=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return w


def _keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks instead of returning them to the OS (``mallopt``).

    The published loop allocates three 2 MB temporaries per update; depending on the heap's
    state glibc hands them back to the kernel and page-faults them in again, which made the
    loop up to 4x slower in our runs. Pinning the trim and mmap thresholds gives the baseline
    its best case. Returns whether it applied (glibc only).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_trim_threshold, 512 << 20)) and bool(
            libc.mallopt(m_mmap_threshold, 512 << 20)
        )
    except (OSError, AttributeError):
        return False


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--units", type=int, help=f"units (default {N_UNITS})")
    parser.add_argument("--steps", type=int, help=f"steps per epoch (default {N_STEPS})")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv, _extra)
    set_threads(1)
    try:  # numpy's BLAS was loaded before set_threads could pin it through the environment
        from threadpoolctl import threadpool_limits
    except ImportError:
        return _run(args)
    with threadpool_limits(limits=1):
        return _run(args)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    malloc_pinned = _keep_freed_memory()

    n = args.units or N_UNITS
    t = args.steps or (300 if args.quick else N_STEPS)
    repeats = 1 if args.quick else 3
    data, j0 = make_data(n, t, BATCH)
    j_ref = curbd_numpy(data[0], j0)
    j_ours = torch_epoch(data[:1], j0, "cpu", torch.float64).numpy()
    max_dj = float(np.abs(j_ours - j_ref).max())
    floor = float(np.abs(curbd_numpy(data[0], j0, reorder=True) - j_ref).max())
    same_j = max_dj <= 10 * floor + 1e-10
    base = timeit(lambda: curbd_numpy(data[0], j0), repeats=repeats, warmup=0)
    runs = [(BASELINE, "cpu", "float64", 1, base)]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for dtype in ["float64"] + (["float32"] if device == "cuda" else []):
            for b in (1, BATCH):
                fn = functools.partial(torch_epoch, data[:b], j0, device, getattr(torch, dtype))
                runs.append((f"torch, B = {b}", device, dtype, b, timeit(fn, repeats=repeats)))
    rows = []
    for name, device, dtype, b, timing in runs:
        per_trial = timing.median / b
        rows.append({"method": name, "device": device, "dtype": dtype, "trials/step": b,
                     "s/epoch": timing.median, "s/trial-epoch": per_trial,
                     "x numpy": base.median / per_trial})  # fmt: skip
    mode = "quick" if args.quick else "full"
    print_table(rows, f"RLS/FORCE, {n} units x {t} steps per epoch, 1 thread ({mode})")
    ratio_cpu = rows[1]["x numpy"]
    ratio_batched = rows[2]["x numpy"]
    gpu = [r["x numpy"] for r in rows if r["device"] == "cuda"]
    print(
        f"torch B=1 vs {BASELINE}: {ratio_cpu:.2f}x per epoch (target >= {TARGET_CPU:.0f}x); "
        f"B={BATCH} batched: {ratio_batched:.2f}x per trial; same J: max |dJ| = {max_dj:.2e} "
        f"(numpy vs numpy summed in another order: {floor:.2e}) -> {same_j}"
        + (f"; best GPU: {max(gpu):.1f}x (target >= {TARGET_GPU:.0f}x)" if gpu else "")
    )
    result = {
        "benchmark": "rls",
        "shape": {"units": n, "steps": t, "batch": BATCH},
        "settings": {
            "g": G,
            "p0": P0,
            "alpha": 1.0,
            "dtype": "float64",
            "malloc_thresholds_pinned": malloc_pinned,
        },  # fmt: skip
        "baseline": BASELINE,
        "mode": mode,
        "ratio": ratio_cpu,
        "ratio_batched_per_trial": ratio_batched,
        "ratio_gpu_best": max(gpu) if gpu else None,
        "target_ratio": TARGET_CPU,
        "met": bool(ratio_cpu >= TARGET_CPU),
        "max_abs_dJ": max_dj,
        "max_abs_dJ_rounding_floor": floor,
        "same_J": bool(same_j),
        "rows": rows,
        "environment": environment(),
    }
    if args.json:
        write_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
