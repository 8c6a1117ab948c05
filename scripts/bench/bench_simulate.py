"""Benchmark (c): ``neurosim.simulate`` to an xarray Dataset vs a bare torch forward.

1,000 trials x 100 steps x 256 units, one thread. Task
``PerceptualDecisionMaking-v0`` at dt=20 ms with timing fixation 100 + stimulus
1800 + delay 0 + decision 100 ms (100 steps, every trial the same length);
model ``RateRNN(3, 256, 3, dt=20, tau=100)`` (relu, recurrent noise on).

- **bare forward** (the baseline): ``with torch.no_grad(): model(inputs,
  noise=True, generator=g)`` on a batch drawn beforehand, inputs already a
  tensor view of it (``torch.from_numpy``); outputs and states stay tensors.
- **simulate(batch=...)**: ``neurosim.simulate(model, task, batch=batch, seed=0)``
  on the same batch: the forward plus everything that turns it into a labelled
  Dataset (eval mode, seeded noise, numpy views, trial coordinates, provenance).
- **simulate(1000, seed)**: ``neurosim.simulate(model, task, 1000, seed=0)``,
  which also draws the 1,000 trials from the task.
- **draw batch** (context): ``task.batch(1000, seed)`` alone.

The methods run in interleaved rounds after one warm-up each; the table gives
the median and IQR over rounds and the ratio of medians against the bare
forward (target <= 1.5x for ``simulate``). Peak extra memory (Linux only) is
measured for each method in a fresh subprocess after one warm-up call: the peak
resident set during one more call (``VmHWM``, reset through
``/proc/self/clear_refs``) minus the resident set before it, with glibc's mmap
threshold fixed at 64 KiB (``MALLOC_MMAP_THRESHOLD_``) so that freed blocks go back
to the system instead of hiding in the heap.

Run ``python scripts/bench/bench_simulate.py [--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import statistics
import subprocess
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import environment, parse_args, print_table, set_threads, timeit, write_json

TASK = "neurogym/PerceptualDecisionMaking-v0"
TASK_KW = {"dt": 20, "timing": {"fixation": 100, "stimulus": 1800, "delay": 0, "decision": 100}}
N_TRIALS, N_STEPS, N_UNITS = 1000, 100, 256
TARGET_RATIO = 1.5
BASELINE = "bare forward"
MAIN = "simulate(batch=...)"


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def peak_extra_mb(fn: Callable[[], Any]) -> float | None:
    """Peak resident memory added while ``fn()`` runs (its result held), in MB; None if unknown."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _status_kb("VmRSS")
    except (OSError, KeyError):
        return None
    result = fn()
    peak = _status_kb("VmHWM")
    del result
    gc.collect()
    return (peak - before) / 1024


def memory_in_subprocess(name: str) -> float | None:
    """Peak extra MB of method ``name``, measured in a fresh interpreter (see module doc)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-of", name]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])["peak_extra_mb"]
    except (IndexError, ValueError, KeyError):
        print(f"memory of {name!r} not measured: {proc.stderr.strip()[-300:]}", file=sys.stderr)
        return None


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memory-of", metavar="METHOD", help=argparse.SUPPRESS)


def setup() -> tuple[Any, Any, Any]:
    import torch

    import neurosim
    import paradigms

    task = paradigms.make(TASK, **TASK_KW)
    batch = task.batch(N_TRIALS, rng=0)
    if batch.inputs.shape[:2] != (N_TRIALS, N_STEPS) or not batch.valid.all():
        raise RuntimeError(
            f"expected {N_TRIALS} unpadded trials of {N_STEPS} steps, got "
            f"{batch.inputs.shape} (valid: {batch.valid.all()})"
        )
    torch.manual_seed(0)
    model = neurosim.models.RateRNN(3, N_UNITS, 3, dt=20.0, tau=100.0)
    return task, batch, model


def methods(task: Any, batch: Any, model: Any) -> dict[str, Callable[[], Any]]:
    import torch

    import neurosim

    seeds = itertools.count(1)

    def bare() -> Any:
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            return model(torch.from_numpy(batch.inputs), noise=True, generator=g)

    return {
        BASELINE: bare,
        MAIN: lambda: neurosim.simulate(model, task, batch=batch, seed=0, quiet=True),
        "simulate(1000, seed)": lambda: neurosim.simulate(
            model, task, N_TRIALS, seed=0, quiet=True
        ),
        "draw batch": lambda: task.batch(N_TRIALS, rng=next(seeds)),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv, _extra)
    set_threads(1)
    if args.memory_of:  # child process of memory_in_subprocess
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn = methods(*setup())[args.memory_of]
            fn()  # warm-up
            print(json.dumps({"peak_extra_mb": peak_extra_mb(fn)}))
        return {}
    rounds = 2 if args.quick else 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task, batch, model = setup()
        fns = methods(task, batch, model)
        times: dict[str, list[float]] = {name: [] for name in fns}
        for fn in fns.values():  # warm-up
            fn()
        for _ in range(rounds):
            for name, fn in fns.items():
                times[name] += timeit(fn, repeats=1, warmup=0).times
        memory = {name: memory_in_subprocess(name) for name in fns}
        ds = fns[MAIN]()
        result_mb = ds.nbytes / 2**20
        del ds

    rows: list[dict[str, Any]] = []
    for name, ts in times.items():
        if len(ts) >= 2:
            q1, med, q3 = statistics.quantiles(ts, n=4, method="inclusive")
        else:
            q1 = med = q3 = ts[0]
        rows.append(
            {
                "method": name,
                "median_s": med,
                "iqr_s": q3 - q1,
                "times_s": ts,
                "peak_extra_mb": memory[name],
            }
        )
    base = rows[0]["median_s"]
    for r in rows:
        r["ratio_vs_bare"] = r["median_s"] / base
    table = [
        {
            "method": r["method"],
            "median ms": r["median_s"] * 1e3,
            "IQR ms": r["iqr_s"] * 1e3,
            "x bare": r["ratio_vs_bare"],
            "peak extra MB": r["peak_extra_mb"],
        }
        for r in rows
    ]
    mode = "quick" if args.quick else "full"
    print_table(table, f"{N_TRIALS} trials x {N_STEPS} steps x {N_UNITS} units, 1 thread ({mode})")
    ratio = rows[1]["ratio_vs_bare"]
    print(
        f"{MAIN} vs {BASELINE}: {ratio:.2f}x (target <= {TARGET_RATIO}x); with drawing the trials: "
        f"{rows[2]['ratio_vs_bare']:.2f}x. Dataset size {result_mb:.0f} MB."
    )
    result = {
        "benchmark": "simulate",
        "task": TASK,
        "task_kwargs": TASK_KW,
        "shape": {"trials": N_TRIALS, "steps": N_STEPS, "units": N_UNITS},
        "baseline": BASELINE,
        "mode": mode,
        "rounds": rounds,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "met": bool(ratio <= TARGET_RATIO),
        "dataset_mb": result_mb,
        "rows": rows,
        "environment": environment(),
    }
    if args.json:
        write_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
