"""Benchmark (h): complex-valued layers and CAE training speed vs real layers of the same shape.

One thread. Two parts:

- **layer cost**: forward + backward of one complex layer (``ComplexConv2d`` 32 → 32
  channels, 3×3, on 16×16 maps, batch 64; and ``ComplexLinear`` 1024 → 64, batch 64, both
  with the norm on magnitudes and the ReLU) against the **real layer of the same shape**
  (the baseline: ``nn.Conv2d`` / ``nn.Linear`` with bias, the same norm, ReLU). The complex
  layer takes and returns ``(magnitude, phase)``; its backward runs from both outputs.
  Target: complex ≤ 4× the real layer's time.
- **training steps/s** of ``scripts/study_objects.py --quick``'s configuration: one Adam
  step of the CAE (scene batch drawn, forward, MSE, backward, update) on ``scenes/2shapes``,
  of the contrastive CAE on ``scenes/tetrominoes``, and the baseline: a real-valued
  autoencoder with the same convolutions, bottleneck and decoder.

Methods run in interleaved rounds after a warm-up (median and IQR over rounds).

Run ``python scripts/bench/bench_complex.py [--quick] [--json PATH]``.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import environment, parse_args, print_table, set_threads, timeit, write_json

TARGET_RATIO = 4.0
BATCH = 64
BASELINE = "real AE, scenes/2shapes"


def _study_setup():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import study_objects

    return study_objects.QUICK, study_objects._paradigm


def _layer_cases() -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    import torch
    from torch import nn

    from neurosim.models._complex import ComplexConv2d, ComplexLinear

    torch.manual_seed(0)
    cases = {}
    for name, cplx, real, shape in (
        (
            "conv 32->32 3x3, 16x16",
            ComplexConv2d(32, 32, 3, 1, 1, norm="batch"),
            nn.Sequential(nn.Conv2d(32, 32, 3, 1, 1), nn.BatchNorm2d(32), nn.ReLU()),
            (BATCH, 32, 16, 16),
        ),
        (
            "linear 1024->64",
            ComplexLinear(1024, 64, norm="layer"),
            nn.Sequential(nn.Linear(1024, 64), nn.LayerNorm(64), nn.ReLU()),
            (BATCH, 1024),
        ),
    ):
        m = torch.rand(shape, requires_grad=True)
        phi = (torch.rand(shape) * 6.28 - 3.14).requires_grad_(True)
        x = torch.rand(shape, requires_grad=True)

        def run_complex(layer=cplx, m=m, phi=phi):
            out_m, out_phi = layer(m, phi)
            (out_m.sum() + out_phi.sum()).backward()

        def run_real(layer=real, x=x):
            layer(x).sum().backward()

        cases[name] = (run_complex, run_real)
    return cases


class _RealAE:
    """The baseline autoencoder: the CAE's convolutions and bottleneck, real-valued."""

    @staticmethod
    def build(image_shape, channels, strides, linear_dim):
        import torch
        from torch import nn

        c, h, w = image_shape
        ins = (c, *channels[:-1])
        enc, dec = [], []
        for i, o, s in zip(ins, channels, strides, strict=True):
            enc += [nn.Conv2d(i, o, 3, s, 1), nn.BatchNorm2d(o), nn.ReLU()]
        for i, o, s in reversed(list(zip(ins, channels, strides, strict=True))):
            conv = nn.Conv2d(o, i, 3, 1, 1) if s == 1 else nn.ConvTranspose2d(o, i, 3, 2, 1, 1)
            dec += [conv, nn.BatchNorm2d(i), nn.ReLU()]
        down = 2 ** sum(s == 2 for s in strides)
        hidden = (channels[-1], h // down, w // down)
        n = hidden[0] * hidden[1] * hidden[2]
        return nn.Sequential(
            *enc,
            nn.Flatten(),
            nn.Linear(n, linear_dim),
            nn.LayerNorm(linear_dim),
            nn.ReLU(),
            nn.Linear(linear_dim, n),
            nn.LayerNorm(n),
            nn.ReLU(),
            nn.Unflatten(1, hidden),
            *dec,
            nn.Conv2d(c, c, 1),
            nn.Sigmoid(),
        ).to(torch.float32)


def _train_cases() -> dict[str, Callable[[], Any]]:
    import numpy as np
    import torch

    from neurosim._object_training import scene_tensors
    from neurosim.models._cae import ComplexAutoEncoder, contrastive_cae_loss, reconstruction_loss

    setup, make = _study_setup()
    cases = {}
    counter = iter(range(10**9))
    for name, pid, contrastive, real in (
        (BASELINE, "scenes/2shapes", False, True),
        ("CAE, scenes/2shapes", "scenes/2shapes", False, False),
        ("contrastive CAE, scenes/tetrominoes", "scenes/tetrominoes", True, False),
    ):
        task = make(pid)
        if real:
            model = _RealAE.build(task.image_shape, setup.channels, setup.strides, setup.linear_dim)
        else:
            model = ComplexAutoEncoder(
                task.image_shape,
                channels=setup.channels,
                strides=setup.strides,
                linear_dim=setup.linear_dim,
                seed=0,
            )
        opt = torch.optim.Adam(model.parameters(), lr=setup.lr)

        def step(task=task, model=model, opt=opt, contrastive=contrastive, real=real):
            k = next(counter)
            x, _ = scene_tensors(task.batch(setup.batch_size, np.random.default_rng([0, k])))
            if real:
                loss = torch.nn.functional.mse_loss(model(x), x)
            elif contrastive:
                g = torch.Generator().manual_seed(k)
                loss, _ = contrastive_cae_loss(
                    model(x), x, weight=setup.contrastive_weight, generator=g
                )
            else:
                loss = reconstruction_loss(model(x), x)
            opt.zero_grad()
            loss.backward()
            opt.step()

        cases[name] = step
    return cases


def _rounds(fns: dict[str, Callable[[], Any]], rounds: int, repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        timeit(fn, repeats=1, warmup=2)
    for _ in range(rounds):
        for k, fn in fns.items():
            t = timeit(fn, repeats=repeats, warmup=0)
            times[k].append(t.median)
    return times


def _stats(ts: list[float]) -> tuple[float, float]:
    if len(ts) >= 2:
        q1, med, q3 = statistics.quantiles(ts, n=4, method="inclusive")
        return med, q3 - q1
    return ts[0], 0.0


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_threads(1)
    rounds = 3 if args.quick else 9
    layer_rows = []
    for name, (cplx, real) in _layer_cases().items():
        t = _rounds({"complex": cplx, "real": real}, rounds, 5 if args.quick else 20)
        (mc, ic), (mr, ir) = _stats(t["complex"]), _stats(t["real"])
        layer_rows.append(
            {
                "layer": name,
                "complex_ms": mc * 1e3,
                "complex_iqr_ms": ic * 1e3,
                "real_ms": mr * 1e3,
                "real_iqr_ms": ir * 1e3,
                "ratio": mc / mr,
                "met": bool(mc / mr <= TARGET_RATIO),
            }
        )
    t = _rounds(_train_cases(), rounds, 3 if args.quick else 10)
    base_med = _stats(t[BASELINE])[0]
    train_rows = []
    for name, ts in t.items():
        med, iqr = _stats(ts)
        train_rows.append(
            {
                "model": name,
                "ms_per_step": med * 1e3,
                "iqr_ms": iqr * 1e3,
                "steps_per_s": 1.0 / med,
                "x real AE time": med / base_med,
            }
        )
    mode = "quick" if args.quick else "full"
    print_table(
        [
            {
                "layer (fwd+bwd, batch 64)": r["layer"],
                "complex ms": r["complex_ms"],
                "real ms": r["real_ms"],
                "ratio": r["ratio"],
                "<= 4x": "yes" if r["met"] else "NO",
            }
            for r in layer_rows
        ],
        f"complex vs real layer of the same shape, 1 thread ({mode})",
    )
    setup, _ = _study_setup()
    print_table(
        [
            {
                "model (study_objects --quick setup)": r["model"],
                "ms/step": r["ms_per_step"],
                "IQR ms": r["iqr_ms"],
                "steps/s": r["steps_per_s"],
                "x real AE": r["x real AE time"],
            }
            for r in train_rows
        ],
        f"training step, batch {setup.batch_size}, channels {setup.channels}, 1 thread ({mode})",
    )
    result = {
        "benchmark": "complex",
        "baseline": "real layer of the same shape / real autoencoder",
        "mode": mode,
        "rounds": rounds,
        "target_ratio": TARGET_RATIO,
        "met": all(r["met"] for r in layer_rows),
        "layers": layer_rows,
        "training": train_rows,
        "setup": {
            "channels": setup.channels,
            "strides": setup.strides,
            "batch_size": setup.batch_size,
            "linear_dim": setup.linear_dim,
        },  # fmt: skip
        "environment": environment(),
    }
    if args.json:
        write_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
