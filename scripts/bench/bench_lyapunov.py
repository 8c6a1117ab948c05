"""Benchmark (d): Lyapunov spectra, ``compute_lyapunov_spectrum`` vs the common reference loop.

A chaotic 256-unit rate RNN, ``RateRNN(1, 256, 1, activation="tanh",
w_rec_init="normal", gain=1.5, tau=100, dt=10)`` (torch seed 0), under zero input,
float64, 32 trajectories from seeded N(0, 1) states, one thread, CPU.

- **reference** (the baseline): the loop public implementations use — one
  trajectory at a time; per step the full N×N Jacobian by
  ``torch.autograd.functional.jacobian`` (one backward pass per unit), ``Q ← J Q``
  and a QR of the full N×N tangent matrix (positive diagonal), ``log|R_ii|``
  accumulated, and a ``.item()`` divergence check. It always computes the whole
  spectrum, re-orthonormalising every step. Run on a float64 copy of the model with
  gradients off (generous to it).
- **ours, top 10**: ``compute_lyapunov_spectrum(net.step, h0, inputs,
  n_exponents=10, ...)``: 10 tangent vectors by vmapped forward-mode JVPs, batched
  over trajectories.
- **ours, full**: all 256 exponents, QR every step (``qr_every=1``), and with
  ``qr_every`` 5 and 10.

The reference costs ~17 ms per trajectory-step, so it is timed on
``REF_TRAJ`` trajectories x ``REF_STEPS`` steps and its cost per trajectory-step
extrapolated to the full run (32 x 2,100 steps: about 20 min). Ours runs the
full 32 trajectories x (100 warm-up + 2,000) steps for the top 10, and 32 x
(10 + 200) steps for the full spectrum (its cost per step is constant). Ratios
compare the cost per trajectory-step. Values are compared on a run both sides
complete: the reference and ours on the same ``REF_TRAJ`` trajectories and steps,
the reference started from ours' documented initial tangent vectors (seeded
Gaussian columns, QR), so the top 10 of its full spectrum must equal our partial
one to rounding. ``qr_every`` 5 and 10 are compared with ``qr_every=1`` on the
32-trajectory full-spectrum runs. Targets: top 10 >= 50x faster, full >= 2x.

Run ``python scripts/bench/bench_lyapunov.py [--quick] [--json PATH]``.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import environment, parse_args, print_table, set_threads, timeit, write_json

N_UNITS, N_TRAJ, K = 256, 32, 10
TARGET_TOP = 50.0
TARGET_FULL = 2.0
BASELINE = "reference loop"
FULL = {
    "steps": 2000,
    "warmup": 100,
    "full_steps": 200,
    "full_warmup": 10,
    "ref_traj": 2,
    "ref_steps": 100,
    "ref_warmup": 10,
    "repeats": 3,
    "full_repeats": 2,
}
QUICK = {"steps": 200, "warmup": 10, "full_steps": 12, "full_warmup": 2,
         "ref_traj": 1, "ref_steps": 20, "ref_warmup": 2, "repeats": 1, "full_repeats": 1}  # fmt: skip


def _spectrum_fn() -> Any:
    from analyses import compute_lyapunov_spectrum

    return compute_lyapunov_spectrum


def setup() -> tuple[Any, Any]:
    import torch

    import neurosim

    torch.manual_seed(0)
    net = neurosim.models.RateRNN(
        1, N_UNITS, 1, activation="tanh", w_rec_init="normal", gain=1.5, tau=100, dt=10
    )
    h0 = torch.from_numpy(np.random.default_rng(0).normal(0.0, 1.0, (N_TRAJ, N_UNITS)))
    return net, h0


def initial_tangents(b: int, n: int, k: int, seed: int = 0) -> Any:
    """Our documented Q_0: columns drawn one by one, positive-diagonal QR."""
    import torch

    g = torch.Generator().manual_seed(seed)
    cols = [torch.randn(b, n, generator=g, dtype=torch.float64) for _ in range(k)]
    q, r = torch.linalg.qr(torch.stack(cols, 2))
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def reference_spectrum(
    net64: Any, h0: Any, inputs: Any, n_steps: int, warmup: int, dt: float, q0: Any = None
) -> np.ndarray:
    """The common reference loop (see the module doc); returns ``[B, N]`` exponents."""
    import torch

    out = []
    for b in range(h0.shape[0]):
        h = h0[b].clone()
        n = h.shape[0]
        q = torch.eye(n, dtype=torch.float64) if q0 is None else q0[b]
        sums = torch.zeros(n, dtype=torch.float64)
        for t in range(warmup + n_steps):
            x = inputs[t : t + 1]
            jac = torch.autograd.functional.jacobian(lambda v, x=x: net64.step(v[None], x)[0], h)
            with torch.no_grad():
                h = net64.step(h[None], x)[0]
                q, r = torch.linalg.qr(jac @ q)
                d = torch.diagonal(r)
                q = q * torch.sign(d)
                if t >= warmup:
                    sums += torch.log(d.abs())
            if not math.isfinite(h.norm().item()):
                raise FloatingPointError(f"trajectory {b} diverged at step {t}")
        out.append((sums / (n_steps * dt)).numpy())
    return np.stack(out)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_threads(1)
    import torch

    cfg = QUICK if args.quick else FULL
    spectrum = _spectrum_fn()
    net, h0 = setup()
    net64 = copy.deepcopy(net).double().requires_grad_(False).eval()
    t_max = max(cfg["warmup"] + cfg["steps"], cfg["full_warmup"] + cfg["full_steps"])
    inputs = torch.zeros(t_max, 1, dtype=torch.float64)
    common = {"dt": net.dt, "device": "cpu", "quiet": True}

    def ours(h: Any, k: int | None, steps: int, warmup: int, qr_every: int = 1) -> Any:
        return spectrum(
            net.step, h, inputs, n_exponents=k, n_steps=steps, warmup=warmup,
            qr_every=qr_every, **common,
        )  # fmt: skip

    ours(h0[:2], K, 3, 1)  # warm-up: imports, first vmap trace
    ours(h0[:2], None, 3, 1)

    # --- values on a run both sides complete
    nb, rs, rw = cfg["ref_traj"], cfg["ref_steps"], cfg["ref_warmup"]
    q0 = initial_tangents(nb, N_UNITS, N_UNITS)
    ref_vals = reference_spectrum(net64, h0[:nb], inputs, rs, rw, net.dt, q0)
    top_small = ours(h0[:nb], K, rs, rw)["exponents"].values
    full_small = ours(h0[:nb], None, rs, rw)["exponents"].values
    diff_top = float(np.abs(top_small - ref_vals[:, :K]).max())
    diff_full = float(np.abs(full_small - ref_vals).max())

    # --- timings
    rows: list[dict[str, Any]] = []

    def record(name: str, fn: Any, traj: int, steps: int, repeats: int, note: str = "") -> Any:
        box: dict[str, Any] = {}

        def call() -> None:
            box["result"] = fn()

        timing = timeit(call, repeats=repeats, warmup=0)
        rows.append(
            {
                "method": name,
                "trajectories": traj,
                "steps": steps,
                "median_s": timing.median,
                "iqr_s": timing.iqr,
                "times_s": timing.times,
                "ms_per_traj_step": timing.median / (traj * steps) * 1e3,
                "note": note,
            }
        )
        return box["result"]

    record(
        BASELINE,
        lambda: reference_spectrum(net64, h0[:nb], inputs, rs, rw, net.dt),
        nb,
        rs + rw,
        cfg["repeats"],
        f"timed on {nb} x {rs + rw}, extrapolated",
    )
    s, w = cfg["steps"], cfg["warmup"]
    top = record(
        f"ours, top {K} (qr_every=1)", lambda: ours(h0, K, s, w), N_TRAJ, s + w, cfg["repeats"]
    )
    fs, fw = cfg["full_steps"], cfg["full_warmup"]
    full = {}
    for qe in (1, 5, 10):
        full[qe] = record(
            f"ours, full {N_UNITS} (qr_every={qe})",
            lambda qe=qe: ours(h0, None, fs, fw, qe),
            N_TRAJ,
            fs + fw,
            cfg["full_repeats"],
        )

    ref_cost = rows[0]["ms_per_traj_step"]
    full_cost = rows[2]["ms_per_traj_step"]
    for r in rows:
        r["speedup_vs_reference"] = ref_cost / r["ms_per_traj_step"]
        r["speedup_vs_full_qr1"] = (
            full_cost / r["ms_per_traj_step"] if "full" in r["method"] else None
        )
        r["extrapolated_s_for_32x"] = r["ms_per_traj_step"] * N_TRAJ * (s + w) / 1e3
    qr_change = {
        qe: float(np.abs(full[qe]["exponents"].values - full[1]["exponents"].values).max())
        for qe in (5, 10)
    }
    table = [
        {
            "method": r["method"],
            "timed": f"{r['trajectories']} x {r['steps']}",
            "median s": r["median_s"],
            "IQR s": r["iqr_s"],
            "ms/traj-step": r["ms_per_traj_step"],
            f"s for {N_TRAJ} x {s + w}": r["extrapolated_s_for_32x"],
            "x reference": r["speedup_vs_reference"],
            "x full qr1": r["speedup_vs_full_qr1"],
        }
        for r in rows
    ]
    mode = "quick" if args.quick else "full"
    print_table(
        table,
        f"Lyapunov spectra, RateRNN {N_UNITS} units (g=1.5), float64, 1 thread ({mode}); "
        f"the reference's row is extrapolated from {nb} x {rs + rw} trajectory-steps",
    )
    values = [
        {"comparison": f"top {K}: ours (k={K}) vs reference", "run": f"{nb} x {rs + rw}",
         "max |diff|": diff_top},
        {"comparison": f"full {N_UNITS}: ours vs reference", "run": f"{nb} x {rs + rw}",
         "max |diff|": diff_full},
        {"comparison": "full: qr_every=5 vs 1", "run": f"{N_TRAJ} x {fs + fw}",
         "max |diff|": qr_change[5]},
        {"comparison": "full: qr_every=10 vs 1", "run": f"{N_TRAJ} x {fs + fw}",
         "max |diff|": qr_change[10]},
    ]  # fmt: skip
    scale = float(np.abs(full[1]["exponents"].values).max())
    for v in values:
        v["relative to max |lambda|"] = v["max |diff|"] / scale
    print_table(
        [{k: f"{x:.2e}" if isinstance(x, float) else x for k, x in v.items()} for v in values],
        f"Values (exponents per ms; max |lambda| = {scale:.2e})",
    )
    lam1 = top["mean"].values[0]
    ratio_top = rows[1]["speedup_vs_reference"]
    ratio_full = rows[2]["speedup_vs_reference"]
    print(
        f"top {K}: {ratio_top:.0f}x faster than the reference (target >= {TARGET_TOP:.0f}x); "
        f"full spectrum, QR every step: {ratio_full:.1f}x (target >= {TARGET_FULL:.0f}x); "
        f"qr_every 5 / 10: {rows[3]['speedup_vs_full_qr1']:.2f}x / "
        f"{rows[4]['speedup_vs_full_qr1']:.2f}x faster than qr_every=1. "
        f"lambda_1 = {lam1:.2e} per ms (+/- {top['sem'].values[0]:.1e}), backend "
        f"{top.attrs['jvp_backend']} (k={K}), {full[1].attrs['jvp_backend']} (full)."
    )
    result = {
        "benchmark": "lyapunov",
        "model": "RateRNN(1, 256, 1, activation='tanh', w_rec_init='normal', gain=1.5, "
        "tau=100, dt=10), torch seed 0",
        "shape": {"trajectories": N_TRAJ, "units": N_UNITS, "steps": s, "warmup": w},
        "config": cfg,
        "baseline": BASELINE,
        "mode": mode,
        "ratio_top": ratio_top,
        "ratio_full": ratio_full,
        "target_top": TARGET_TOP,
        "target_full": TARGET_FULL,
        "met": bool(ratio_top >= TARGET_TOP and ratio_full >= TARGET_FULL),
        "qr_every_speedup": {
            "5": rows[3]["speedup_vs_full_qr1"],
            "10": rows[4]["speedup_vs_full_qr1"],
        },
        "values": values,
        "lambda_1_per_ms": float(lam1),
        "mean_top_exponents_per_ms": [float(v) for v in top["mean"].values],
        "median_of_reference_times_s": statistics.median(rows[0]["times_s"]),
        "rows": rows,
        "environment": environment(),
    }
    if args.json:
        write_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
