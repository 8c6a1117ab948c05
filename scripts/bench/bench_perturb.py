"""Benchmark (e): 64 perturbation conditions in one batched simulate vs a loop over conditions.

64 conditions x 8 trials of ``PerceptualDecisionMaking-v0`` (dt=20 ms, 100 steps:
fixation 100 + stimulus 1800 + decision 100 ms) through ``RateRNN(3, N, 3,
dt=20, tau=100)`` with recurrent noise, one thread.

- **loop** (the baseline): ``for p in conditions: neurosim.simulate(model, task,
  batch=batch, seed=0, perturbation=p)`` — one Dataset per condition, the way a
  user would write it without batching.
- **batched**: ``neurosim.simulate(model, task, batch=batch, seed=0,
  perturbation=conditions)`` — ONE simulation with a ``condition`` dim.

A third row per size, **floor**, is one bare forward of the same 512 trials
(64 copies of the 8) with no perturbation: the arithmetic any batched run must do,
so ``loop / floor`` is the largest speed-up batching can give.

Two condition sets: *state/input* (16 strengths each of unit lesion, module
scale, state noise and input noise: conditions become rows of one batch) and
*with weights* (the same with the module scale replaced by recurrent-weight
scaling, which runs the step through ``torch.vmap`` over conditions). Each is
timed for N = 64 and 256 units in interleaved rounds (median, IQR); the results
of both methods are compared (max abs difference of states). Target: batched
>= 5x faster than the loop.

Run ``python scripts/bench/bench_perturb.py [--quick] [--json PATH]``.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import environment, parse_args, print_table, set_threads, timeit, write_json

TASK = "neurogym/PerceptualDecisionMaking-v0"
TASK_KW = {"dt": 20, "timing": {"fixation": 100, "stimulus": 1800, "delay": 0, "decision": 100}}
N_CONDITIONS, N_TRIALS = 64, 8
TARGET_RATIO = 5.0


def conditions(with_weights: bool) -> list[Any]:
    from neurosim import Perturbation as P

    strengths = np.linspace(0.0, 1.0, N_CONDITIONS // 4)
    third = (
        (lambda s: P("weights", "scale", float(s), label=f"w {s:.3f}"))
        if with_weights
        else (lambda s: P("module", "scale", float(s), module="rnn", label=f"m {s:.3f}"))
    )
    return [
        make(s)
        for make in (
            lambda s: P("state", "lesion", float(s), label=f"l {s:.3f}"),
            lambda s: P("state", "noise", float(s), label=f"n {s:.3f}"),
            third,
            lambda s: P("inputs", "noise", float(s), label=f"i {s:.3f}"),
        )
        for s in strengths
    ]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_threads(1)
    import torch

    import neurosim
    import paradigms

    rounds = 2 if args.quick else 5
    sizes = (64,) if args.quick else (64, 256)
    task = paradigms.make(TASK, **TASK_KW)
    batch = task.batch(N_TRIALS, rng=0)
    rows: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in sizes:
            torch.manual_seed(0)
            model = neurosim.models.RateRNN(3, n, 3, dt=20.0, tau=100.0)
            for with_weights in (False, True):
                conds = conditions(with_weights)

                def loop(conds=conds, model=model) -> list[Any]:
                    return [
                        neurosim.simulate(model, task, batch=batch, seed=0, perturbation=p)
                        for p in conds
                    ]

                def batched(conds=conds, model=model) -> Any:
                    return neurosim.simulate(model, task, batch=batch, seed=0, perturbation=conds)

                stacked = torch.from_numpy(np.tile(batch.inputs, (N_CONDITIONS, 1, 1)))

                def floor(model=model, stacked=stacked) -> Any:  # the arithmetic alone
                    g = torch.Generator().manual_seed(0)
                    with torch.no_grad():
                        return model(stacked, noise=True, generator=g)

                many, one = loop(), batched()
                diff = max(
                    float(np.abs(one["state"].values[i] - d["state"].values).max())
                    for i, d in enumerate(many)
                )
                times: dict[str, list[float]] = {"loop": [], "batched": [], "floor": []}
                floor()
                for _ in range(rounds):
                    times["loop"] += timeit(loop, repeats=1, warmup=0).times
                    times["batched"] += timeit(batched, repeats=1, warmup=0).times
                    times["floor"] += timeit(floor, repeats=1, warmup=0).times
                med = {k: statistics.median(v) for k, v in times.items()}
                rows.append(
                    {
                        "units": n,
                        "conditions": "with weights" if with_weights else "state/input",
                        "loop s": med["loop"],
                        "batched s": med["batched"],
                        "speed-up": med["loop"] / med["batched"],
                        "floor s": med["floor"],
                        "loop / floor": med["loop"] / med["floor"],
                        "max |diff|": diff,
                        "times_s": times,
                    }
                )
    mode = "quick" if args.quick else "full"
    print_table(
        [{k: v for k, v in r.items() if k != "times_s"} for r in rows],
        f"{N_CONDITIONS} conditions x {N_TRIALS} trials x 100 steps, 1 thread ({mode})",
    )
    worst = min(r["speed-up"] for r in rows)
    print(
        f"batched vs loop over conditions: >= {worst:.1f}x everywhere (target >= {TARGET_RATIO}x)"
    )
    result = {
        "benchmark": "perturb",
        "task": TASK,
        "task_kwargs": TASK_KW,
        "baseline": "loop",
        "mode": mode,
        "rounds": rounds,
        "ratio": worst,
        "target_ratio": TARGET_RATIO,
        "met": bool(worst >= TARGET_RATIO),
        "rows": rows,
        "environment": environment(),
    }
    if args.json:
        write_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
