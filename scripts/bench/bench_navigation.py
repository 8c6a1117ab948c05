"""Benchmark (f): the vectorised foraging-trajectory generator vs per-agent Python loops.

1,000 agents x 100 steps in the 2.2 m square (Sorscher et al.'s walk: Rayleigh speeds,
Gaussian rotation noise, wall avoidance, hard walls), one thread.

- **per-agent loop** (the baseline): the same model written one agent at a time, the
  way a straightforward implementation would: each agent draws its start, start heading,
  rotation noise and speeds with numpy (vectorised over its own steps only), then walks
  step by step in plain Python floats (``math``). Timed on fewer agents (100; 20 with
  ``--quick``) and reported per agent-step, which is what it costs: agents are
  independent, so its time grows linearly with their number.
- **per-agent loop, numpy scalars**: the same loop with numpy scalars and ufuncs
  (``np.cos``, ``np.arctan2``, ...) in place of floats and ``math``; timed on 20 agents
  (5 with ``--quick``).
- **vectorised**: ``paradigms.generate_trajectories(1000, 100, rng)``: one Python loop
  over the 100 steps, numpy over the agents. Target >= 50x the agent-steps/s of the
  per-agent loop (``met``; ``met_vs_numpy_loop`` against the numpy-scalar loop).
- **vectorised, 10,000 agents** (context): how the cost per agent-step falls with more
  agents.
- **batch (walk + codes)** (context): ``navigation/square``'s ``batch(1000)`` at 100 steps,
  which adds the inputs and the 512 place + 12 head-direction cell codes of every step.

The methods run in interleaved rounds after one warm-up each (median and IQR over
rounds). Before timing, both loops are run on the vectorised generator's own random draws
(its documented draw order) and must reproduce its positions and headings to 1e-9.

Run ``python scripts/bench/bench_navigation.py [--quick] [--json PATH]``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import environment, parse_args, print_table, set_threads, timeit, write_json

N_AGENTS, N_STEPS = 1000, 100
SIZE, DT, MARGIN, SLOW = 2.2, 0.02, 0.03, 0.25
SPEED_SCALE, TURN_SD = 0.13 * 2 * math.pi, 11.52
TARGET_RATIO = 50.0
BASELINE, NUMPY_LOOP, MAIN = "per-agent loop", "per-agent loop, numpy scalars", "vectorised"


def walk_one(start, h0, turns, speeds, half=SIZE / 2):
    """One agent's walk in the square, step by step in Python floats (``math``)."""
    x, y, h = float(start[0]), float(start[1]), float(h0)
    xs, ys, hs = [x], [y], [h]
    half_pi, two_pi, pi = math.pi / 2, 2 * math.pi, math.pi
    for turn, v in zip(turns, speeds, strict=True):
        ax, ay = abs(x), abs(y)
        x_wall = ax >= ay  # the nearest wall, its distance and outward normal
        normal = math.atan2(0.0, x) if x_wall else math.atan2(y, 0.0)
        a = (h - normal + pi) % two_pi - pi
        h += turn
        step = v * DT
        if half - max(ax, ay) < MARGIN and abs(a) < half_pi:  # avoid it: turn parallel, slow
            h += math.copysign(half_pi, a) - a
            step *= SLOW
        c, s = math.cos(h), math.sin(h)
        xn, yn = x + step * c, y + step * s
        if abs(xn) > half or abs(yn) > half:  # hard wall: stop just short of it
            reach = min(
                (half - p * math.copysign(1.0, u)) / abs(u) if u != 0 else math.inf
                for p, u in ((x, c), (y, s))
            )
            step = max(min(step, reach * (1 - 1e-9)), 0.0)
            xn, yn = min(max(x + step * c, -half), half), min(max(y + step * s, -half), half)
        x, y = xn, yn
        xs.append(x)
        ys.append(y)
        hs.append(h)
    return xs, ys, hs


def walk_one_numpy(start, h0, turns, speeds, half=SIZE / 2):
    """The same walk with numpy scalars and ufuncs instead of floats and ``math``."""
    x, y, h = np.float64(start[0]), np.float64(start[1]), np.float64(h0)
    xs, ys, hs = [x], [y], [h]
    for turn, v in zip(turns, speeds, strict=True):
        ax, ay = np.abs(x), np.abs(y)
        x_wall = ax >= ay
        normal = np.arctan2(0.0, x) if x_wall else np.arctan2(y, 0.0)
        a = np.mod(h - normal + np.pi, 2 * np.pi) - np.pi
        h = h + turn
        step = v * DT
        if half - np.maximum(ax, ay) < MARGIN and np.abs(a) < np.pi / 2:
            h = h + (np.copysign(np.pi / 2, a) - a)
            step = step * SLOW
        c, s = np.cos(h), np.sin(h)
        xn, yn = x + step * c, y + step * s
        if np.abs(xn) > half or np.abs(yn) > half:
            reach = min(
                (half - p * np.copysign(1.0, u)) / np.abs(u) if u != 0 else np.inf
                for p, u in ((x, c), (y, s))
            )
            step = np.maximum(np.minimum(step, reach * (1 - 1e-9)), 0.0)
            xn, yn = np.clip(x + step * c, -half, half), np.clip(y + step * s, -half, half)
        x, y = xn, yn
        xs.append(x)
        ys.append(y)
        hs.append(h)
    return xs, ys, hs


def loop_generator(n_agents: int, n_steps: int, seed: int, walk=walk_one) -> list[Any]:
    """The baseline: every agent draws its own numbers (numpy, over its steps), then walks."""
    g = np.random.default_rng(seed)
    half = SIZE / 2
    out = []
    for _ in range(n_agents):
        start = g.uniform(-half, half, 2)
        h0 = g.uniform(-math.pi, math.pi)
        turns = g.normal(0.0, TURN_SD, n_steps) * DT
        speeds = g.rayleigh(SPEED_SCALE, n_steps)
        if walk is walk_one:
            turns, speeds = turns.tolist(), speeds.tolist()
        out.append(walk(start, h0, turns, speeds))
    return out


def _generator() -> Any:
    import paradigms

    return paradigms.generate_trajectories


def check_same_model(n_agents: int = 200) -> float:
    """Max |difference| between the loop and the vectorised walk on the same draws."""
    tr = _generator()(n_agents, N_STEPS, rng=123)
    g = np.random.default_rng(123)  # generate_trajectories' documented draw order
    start = g.uniform(-SIZE / 2, SIZE / 2, (2, n_agents)).T
    h0 = g.uniform(-np.pi, np.pi, n_agents)
    turns = (g.normal(0.0, TURN_SD, (N_STEPS, n_agents)) * DT).T
    speeds = g.rayleigh(SPEED_SCALE, (N_STEPS, n_agents)).T
    worst = 0.0
    for i in range(n_agents):
        for walk in (walk_one, walk_one_numpy):
            xs, ys, hs = walk(start[i], h0[i], turns[i].tolist(), speeds[i].tolist())
            ref = np.column_stack([xs, ys]).astype(np.float64)
            worst = max(worst, float(np.abs(ref - tr.position[i]).max()))
            worst = max(worst, float(np.abs(np.array(hs, np.float64) - tr.heading[i]).max()))
    return worst


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_threads(1)
    import paradigms

    generate_trajectories = _generator()
    diff = check_same_model()
    if diff > 1e-9:
        raise RuntimeError(f"the loop and the vectorised walk disagree by {diff:.3g}")
    n_loop = 20 if args.quick else 100
    n_np = 5 if args.quick else 20
    rounds = 3 if args.quick else 7
    seeds = iter(range(10_000))
    task = paradigms.make("navigation/square", n_steps=N_STEPS)
    runs = {
        BASELINE: (n_loop, lambda: loop_generator(n_loop, N_STEPS, next(seeds))),
        NUMPY_LOOP: (n_np, lambda: loop_generator(n_np, N_STEPS, next(seeds), walk_one_numpy)),
        MAIN: (N_AGENTS, lambda: generate_trajectories(N_AGENTS, N_STEPS, rng=next(seeds))),
        "vectorised, 10,000 agents": (
            10 * N_AGENTS,
            lambda: generate_trajectories(10 * N_AGENTS, N_STEPS, rng=next(seeds)),
        ),
        "batch (walk + codes)": (N_AGENTS, lambda: task.batch(N_AGENTS, rng=next(seeds))),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _, fn in runs.values():  # warm-up
        fn()
    for _ in range(rounds):  # interleaved, so that a busy machine slows every method alike
        for name, (_, fn) in runs.items():
            times[name] += timeit(fn, repeats=1, warmup=0).times
    rows = []
    for name, (agents, _) in runs.items():
        ts = times[name]
        q1, med, q3 = statistics.quantiles(ts, n=4, method="inclusive")
        rows.append(
            {
                "method": name,
                "agents": agents,
                "steps": N_STEPS,
                "median_s": med,
                "iqr_s": q3 - q1,
                "times_s": ts,
                "agent_steps_per_s": agents * N_STEPS / med,
            }
        )
    by = {r["method"]: r for r in rows}
    for r in rows:
        r["ratio_vs_loop"] = r["agent_steps_per_s"] / by[BASELINE]["agent_steps_per_s"]
        r["ratio_vs_numpy_loop"] = r["agent_steps_per_s"] / by[NUMPY_LOOP]["agent_steps_per_s"]
    mode = "quick" if args.quick else "full"
    print_table(
        [
            {
                "method": r["method"],
                "agents": r["agents"],
                "median ms": r["median_s"] * 1e3,
                "IQR ms": r["iqr_s"] * 1e3,
                "agent-steps/s": r["agent_steps_per_s"],
                "x loop": r["ratio_vs_loop"],
                "x numpy loop": r["ratio_vs_numpy_loop"],
            }
            for r in rows
        ],
        f"foraging walk, {N_STEPS} steps, square {SIZE} m, 1 thread ({mode})",
    )
    ratio, ratio_np = by[MAIN]["ratio_vs_loop"], by[MAIN]["ratio_vs_numpy_loop"]
    print(
        f"{MAIN} ({N_AGENTS} agents) vs {BASELINE}: {ratio:.1f}x agent-steps/s, vs {NUMPY_LOOP}: "
        f"{ratio_np:.0f}x (target >= {TARGET_RATIO:.0f}x; loops timed on {n_loop} and {n_np} "
        f"agents, per agent-step). Same model: max |difference| {diff:.1e}."
    )
    result = {
        "benchmark": "navigation",
        "shape": {"agents": N_AGENTS, "steps": N_STEPS, "loop_agents": [n_loop, n_np]},
        "baseline": BASELINE,
        "mode": mode,
        "rounds": rounds,
        "ratio": ratio,
        "ratio_vs_numpy_loop": ratio_np,
        "target_ratio": TARGET_RATIO,
        "met": bool(ratio >= TARGET_RATIO),
        "met_vs_numpy_loop": bool(ratio_np >= TARGET_RATIO),
        "max_abs_difference": diff,
        "rows": rows,
        "environment": environment(),
    }
    if args.json:
        write_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
