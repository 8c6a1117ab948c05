"""Benchmark (a): trials per second of our batches vs ``neurogym.Dataset``.

Task ``PerceptualDecisionMaking-v0`` at dt=100 ms (a 22-step trial), batch size
B=64, everything in one process and one run, one thread.

- **ours**: ``paradigms.make("neurogym/PerceptualDecisionMaking-v0").batch(64, seed)``
  with a fresh seed per call; trials/s = 64 / time per call. Each batch holds
  whole, aligned, padded trials with masks, periods and a trial table.
- **neurogym.Dataset** (the baseline): ``Dataset(env, batch_size=64, seq_len=L)``
  for L=100 (the neurogym docs recipe) and L=22 (one trial per row). It keeps one
  deep copy of the env per batch row and refills a cache by calling
  ``new_trial()`` on each, once every ``cache_len / L - 1`` calls. One timed block
  is exactly one such cycle of calls (one refill); trials are counted as the
  rise of ``env.unwrapped.num_tr`` summed over its envs (``TrialEnv.new_trial``
  increments it). That counts every trial generated, including those cut at
  chunk edges and those in the cache's last chunk, which is never served: a
  count generous to the baseline.
- **bare new_trial()**: a loop of 64 ``env.unwrapped.new_trial()`` calls, the
  floor both methods are bounded by.

The methods run in interleaved rounds (so load drift hits all alike) after one
warm-up block each, with set-up objects frozen out of the garbage collector.
``trials/s`` is the median block's trials over its median time; ``served/s``
counts the steps actually handed out, in whole-trial units (22 steps).

Run ``python scripts/bench/bench_batches.py [--quick] [--json PATH]``.
"""

from __future__ import annotations

import gc
import itertools
import statistics
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from _common import environment, parse_args, print_table, set_threads, timeit, write_json

TASK = "PerceptualDecisionMaking-v0"
B = 64
DT = 100
SEQ_LENS = (100, 22)
BASELINE = "neurogym.Dataset L=100"


def _num_tr(ds: Any) -> int:
    return sum(e.unwrapped.num_tr for e in ds.envs)


def _align(ds: Any) -> int:
    """Advance ``ds`` to just after a cache refill; return the calls per refill cycle."""
    n0 = _num_tr(ds)
    while _num_tr(ds) == n0:
        ds()
    n1, calls = _num_tr(ds), 0
    while _num_tr(ds) == n1:
        ds()
        calls += 1
    return calls


class Method:
    """One timed block of work and the number of trials it produced."""

    def __init__(self, name: str, seq_len: int, block: Callable[[], int], info: dict[str, Any]):
        self.name, self.seq_len, self.block, self.info = name, seq_len, block, info
        self.times: list[float] = []
        self.counts: list[int] = []

    def run(self, repeats: int) -> None:
        counts: list[int] = []
        t = timeit(lambda: counts.append(self.block()), repeats=repeats, warmup=0)
        self.times += t.times
        self.counts += counts


def dataset_method(seq_len: int) -> Method:
    import gymnasium as gym
    import neurogym

    env = gym.make(TASK, dt=DT, disable_env_checker=True)
    ds = neurogym.Dataset(env, batch_size=B, seq_len=seq_len)
    cycle = _align(ds)  # ds now sits at the start of a refill cycle

    def block() -> int:
        n0 = _num_tr(ds)
        for _ in range(cycle):
            ds()
        return _num_tr(ds) - n0

    info = {
        "calls_per_block": cycle,
        "cache_len": ds._cache_len,
        "served_steps": cycle * seq_len * B,
    }
    return Method(f"neurogym.Dataset L={seq_len}", seq_len, block, info)


def ours_method() -> Method:
    import paradigms

    task = paradigms.make(f"neurogym/{TASK}", dt=DT)
    seeds = itertools.count(12345)

    def block() -> int:
        return task.batch(B, next(seeds)).n_trials

    b = task.batch(B, 0)
    info = {"calls_per_block": 1, "served_steps": int(b.lengths.sum())}
    return Method("ours: make(...).batch(64)", b.n_steps, block, info)


def bare_method() -> Method:
    import gymnasium as gym
    import neurogym  # noqa: F401  (registers the tasks)

    env = gym.make(TASK, dt=DT, disable_env_checker=True).unwrapped
    env.reset(seed=0)

    def block() -> int:
        for _ in range(B):
            env.new_trial()
        return B

    info = {"calls_per_block": B, "served_steps": B * len(env.ob)}
    return Method("bare env.new_trial() x64", len(env.ob), block, info)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_threads(1)
    # Interleaved rounds so that load drift hits every method alike. Per round:
    # one Dataset refill cycle (~45 ms) each, and `k` batches / bare loops (~2-4 ms).
    rounds, k = (6, 5) if args.quick else (60, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        methods = [dataset_method(L) for L in SEQ_LENS] + [ours_method(), bare_method()]
        gc.collect()
        gc.freeze()  # set-up objects (64 env copies per Dataset) stay out of every method's GC
        for m in methods:  # warm-up
            m.block()
        for _ in range(rounds):
            for m in methods:
                m.run(1 if m.name.startswith("neurogym") else k)

    trial_steps = methods[-1].seq_len  # steps of one whole trial (fixed for this task)
    rows: list[dict[str, Any]] = []
    for m in methods:
        q1, med, q3 = statistics.quantiles(m.times, n=4, method="inclusive")
        trials = statistics.median(m.counts)
        rows.append(
            {
                "method": m.name,
                "seq_len": m.seq_len,
                **m.info,
                "trials_per_block": trials,
                "trials_per_block_constant": len(set(m.counts)) == 1,
                "blocks": len(m.times),
                "median_s": med,
                "iqr_s": q3 - q1,
                "trials_per_s": trials / med,
                "served_trials_per_s": m.info["served_steps"] / trial_steps / med,
            }
        )
    base = {r["method"]: r["trials_per_s"] for r in rows}
    for r in rows:
        for L in SEQ_LENS:
            r[f"ratio_vs_dataset_L{L}"] = r["trials_per_s"] / base[f"neurogym.Dataset L={L}"]

    table = [
        {
            "method": r["method"],
            "T": r["seq_len"],
            "trials/block": int(r["trials_per_block"]),
            "block ms": r["median_s"] * 1e3,
            "IQR ms": r["iqr_s"] * 1e3,
            "trials/s": r["trials_per_s"],
            "served/s": r["served_trials_per_s"],
            "x Dataset L=100": r["ratio_vs_dataset_L100"],
            "x Dataset L=22": r["ratio_vs_dataset_L22"],
        }
        for r in rows
    ]
    mode = "quick" if args.quick else "full"
    print_table(table, f"Batches of {B} trials, {TASK} dt={DT} ms, 1 thread ({mode})")
    ours = rows[2]
    print(
        f"ours vs {BASELINE}: {ours['ratio_vs_dataset_L100']:.2f}x "
        f"(vs L=22: {ours['ratio_vs_dataset_L22']:.2f}x; target >= 1.0x). "
        "Dataset trials = rise of env.unwrapped.num_tr (all generated, served or not);\n"
        f"served/s = steps handed out per s / {trial_steps} steps per trial (Dataset never "
        "serves its cache's last chunk)."
    )
    result = {
        "benchmark": "batches",
        "task": TASK,
        "dt": DT,
        "batch_size": B,
        "baseline": BASELINE,
        "mode": mode,
        "rounds": rounds,
        "rows": rows,
        "environment": environment(),
    }
    if args.json:
        write_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
