"""Benchmark (i): latent-model training throughput (trials/s) vs a fused-GRU LFADS-style model.

A realistic size: 100 neurons (75 held in), 64 latent units, 50 time bins, batch 32, an
encoder of 64 units per direction. One training step = encoder → posterior sample → generator
over all bins → Poisson NLL of every neuron + KL → backward → Adam. Methods:

- **LatentRNN** (ours): ``neurosim.models._latent.LatentRNN``, whose generator is a leaky
  ``RateRNN`` stepped in a Python loop (so fixed points, Lyapunov spectra and perturbations
  apply to it), exactly the step ``fit_latent`` takes.
- **fused GRU** (the baseline): the same encoder, posterior, readout and loss with the
  generator replaced by ``torch.nn.GRU`` (one fused kernel over time; cuDNN on a GPU), as
  in LFADS-style implementations.
- **generator only** (context): the ``RateRNN`` generator from a fixed initial state with
  the same readout and loss, without the encoder.
- **fit_latent** (context): whole epochs of ``fit_latent`` on a synthetic recording of the
  same size (trials/s of training data, validation pass included).

Trials/s = batch / median step time over interleaved rounds after a warm-up. The ratio is
LatentRNN trials/s over fused-GRU trials/s (1.0 = as fast). ``--device cuda`` runs on a GPU.

Run ``python scripts/bench/bench_latent.py [--quick] [--device D] [--batch B] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from _common import environment, parse_args, print_table, set_threads, timeit, write_json

N_NEURONS, N_HELD_IN, N_LATENT, N_BINS, BATCH, ENC = 100, 75, 64, 50, 32, 64
MAIN, BASELINE = "LatentRNN", "fused GRU (LFADS-style)"


def _cases(device: str, batch: int) -> dict[str, Callable[[], Any]]:
    import torch
    from torch import nn

    from neurosim.models._latent import LatentRNN, kl_to_standard_normal

    torch.manual_seed(0)
    dev = torch.device(device)
    counts = torch.poisson(torch.full((batch, N_BINS, N_NEURONS), 0.5)).to(dev)
    held_in = list(range(N_HELD_IN))
    u = torch.zeros(batch, N_BINS, 0, device=dev)
    ours = LatentRNN(N_NEURONS, N_LATENT, encoder_hidden=ENC, held_in=held_in, dt=20.0,
                     tau=100.0).to(dev)  # fmt: skip
    twin = LatentRNN(N_NEURONS, N_LATENT, encoder_hidden=ENC, held_in=held_in).to(dev)
    gru = nn.GRU(1, N_LATENT, batch_first=True).to(dev)
    gen_only = LatentRNN(N_NEURONS, N_LATENT, encoder_hidden=ENC, held_in=held_in).to(dev)
    h_fixed = 0.5 * torch.randn(batch, N_LATENT, device=dev)

    def poisson(z: torch.Tensor) -> torch.Tensor:
        return (torch.exp(z) - counts * z).mean()

    def encode(model: LatentRNN) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = model.infer_initial_state(counts)
        eps = torch.randn(mean.shape, device=dev)
        return mean + torch.exp(0.5 * logvar) * eps, kl_to_standard_normal(mean, logvar).mean()

    def make(params, loss_fn) -> Callable[[], None]:
        opt = torch.optim.Adam(params, lr=1e-3)

        def step() -> None:
            loss = loss_fn()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize()

        return step

    def ours_loss() -> torch.Tensor:
        h0, kl = encode(ours)
        _, states = ours(u, state=h0, noise=False)
        return poisson(ours.log_rates(states)) + 0.1 * kl / (N_BINS * N_NEURONS)

    def gru_loss() -> torch.Tensor:
        h0, kl = encode(twin)
        states, _ = gru(torch.zeros(batch, N_BINS, 1, device=dev), h0[None].contiguous())
        return poisson(twin.log_rates(states)) + 0.1 * kl / (N_BINS * N_NEURONS)

    def gen_loss() -> torch.Tensor:
        _, states = gen_only(u, state=h_fixed, noise=False)
        return poisson(gen_only.log_rates(states))

    return {
        MAIN: make(list(ours.parameters()), ours_loss),
        BASELINE: make([*twin.parameters(), *gru.parameters()], gru_loss),
        "generator only": make(list(gen_only.parameters()), gen_loss),
    }


def _fit_rate(device: str, batch: int, epochs: int) -> float:
    """Training trials/s of whole ``fit_latent`` epochs (validation included)."""
    import time

    import numpy as np

    from neurosim._recordings import make_recording
    from neurosim.fit._latent_fit import fit_latent

    n_trials = 8 * batch
    counts = np.random.default_rng(0).poisson(0.5, size=(n_trials, N_BINS, N_NEURONS))
    rec = make_recording(counts, dt=20.0)
    t0 = time.perf_counter()
    fit = fit_latent(rec, n_latent=N_LATENT, encoder_hidden=ENC, batch_size=batch,
                     max_epochs=epochs, patience=epochs, quiet=True, device=device)  # fmt: skip
    seconds = time.perf_counter() - t0
    return len(fit.split.train) * len(fit.history) / seconds


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"trials per step ({BATCH})")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv, _extra)
    set_threads(1)
    from neurosim._device import resolve_device

    device = str(resolve_device(args.device))
    cases = _cases(device, args.batch)
    rounds, repeats = (3, 3) if args.quick else (7, 10)
    for fn in cases.values():
        timeit(fn, repeats=1, warmup=2)
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for k, fn in cases.items():
            times[k].append(timeit(fn, repeats=repeats, warmup=0).median)
    rows = []
    for k, ts in times.items():
        med = statistics.median(ts)
        rows.append({"method": k, "ms_per_step": med * 1e3, "trials_per_s": args.batch / med})
    base = rows[1]["trials_per_s"]
    for row in rows:
        row["x fused GRU"] = row["trials_per_s"] / base
    fit_tps = _fit_rate(device, args.batch, 2 if args.quick else 5)
    rows.append({"method": "fit_latent (epochs)", "trials_per_s": fit_tps,
                 "x fused GRU": fit_tps / base})  # fmt: skip
    mode = "quick" if args.quick else "full"
    print_table(
        rows,
        f"latent model training, {N_NEURONS} neurons, {N_LATENT} latents, {N_BINS} bins, "
        f"batch {args.batch}, {device}, 1 thread ({mode})",
    )
    ratio = rows[0]["x fused GRU"]
    print(f"{MAIN}: {rows[0]['trials_per_s']:.0f} trials/s, {ratio:.2f}x {BASELINE}.")
    result = {
        "benchmark": "latent",
        "shape": {
            "neurons": N_NEURONS,
            "held_in": N_HELD_IN,
            "latent": N_LATENT,
            "bins": N_BINS,
            "batch": args.batch,
            "encoder_hidden": ENC,
        },  # fmt: skip
        "device": device,
        "baseline": BASELINE,
        "mode": mode,
        "ratio": ratio,
        "trials_per_s": rows[0]["trials_per_s"],
        "rows": rows,
        "environment": environment(),
    }
    if args.json:
        write_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
