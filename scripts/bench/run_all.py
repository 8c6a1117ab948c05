"""Run every benchmark in ``scripts/bench/`` and print one summary table.

(a) batches: trials/s of ``paradigm.batch`` vs ``neurogym.Dataset`` (target >= 1.0x);
(b) training: wall time to 0.85 accuracy vs the neurogym docs recipe (target <= 0.5x);
(c) simulate: ``neurosim.simulate`` to xarray vs a bare torch forward (target <= 1.5x);
(d) lyapunov: spectra vs the per-trajectory reference loop (top 10 >= 50x, full >= 2x faster);
(e) perturb: 64 conditions batched in one simulate vs a loop over conditions (>= 5x faster);
(f) navigation: vectorised trajectory generation vs a per-agent Python loop (>= 50x);
(g) renyi: the vectorised Rényi-bound bandit agent vs the published per-trial optimiser loop,
    per agent-trial (>= 100x), at equal posteriors.
(h) complex: complex-valued layer fwd+bwd vs a real layer of the same shape (<= 4x), and CAE
    training steps/s of ``scripts/study_objects.py --quick``.
(i) rls: RLS/FORCE epoch (500 units x 2,000 steps) in torch vs the per-step numpy CURBD loop
    (no slower on CPU; >= 10x on a GPU), and batched trials per step.
(j) latent: latent RNN training throughput (trials/s) vs the same model with a fused GRU generator.

Each benchmark prints its own table first. The combined result (each benchmark's
full result plus the summary) goes to ``out/bench/results.json`` unless
``--json PATH`` says otherwise; each benchmark's own JSON lands beside it.

Run ``python scripts/bench/run_all.py [--quick] [--json PATH] [--only NAME ...]``
(or ``make bench``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import bench_batches
import bench_complex
import bench_latent
import bench_lyapunov
import bench_navigation
import bench_perturb
import bench_renyi
import bench_rls
import bench_simulate
import bench_training
from _common import environment, parse_args, print_table, set_threads, write_json

BENCHMARKS: dict[str, Callable[[Sequence[str] | None], dict[str, Any]]] = {
    "batches": bench_batches.main,
    "training": bench_training.main,
    "simulate": bench_simulate.main,
    "lyapunov": bench_lyapunov.main,
    "perturb": bench_perturb.main,
    "navigation": bench_navigation.main,
    "renyi": bench_renyi.main,
    "complex": bench_complex.main,
    "rls": bench_rls.main,
    "latent": bench_latent.main,
}
DEFAULT_JSON = Path("out/bench/results.json")


def _row(name: str, ours: float, baseline: float, unit: str, target: str, met: bool | None):
    return {
        "benchmark": name,
        "ours": ours,
        "baseline": baseline,
        "unit": unit,
        "ratio": ours / baseline,
        "target": target,
        "met": "-" if met is None else ("yes" if met else "NO"),
    }


def summarise(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per headline number: ours, baseline, ratio, target and whether it is met."""
    rows = []
    if r := results.get("batches"):
        by = {row["method"]: row for row in r["rows"]}
        ours = next(row for m, row in by.items() if m.startswith("ours"))
        base = by[r["baseline"]]
        for key, label in (
            ("trials_per_s", "(a) batches: trials generated/s"),
            ("served_trials_per_s", "(a) batches: trials served/s"),
        ):
            met = ours[key] >= base[key]
            rows.append(_row(label, ours[key], base[key], "trials/s", ">= 1.0x", met))
    if r := results.get("training"):
        med = r["median_time_s"]
        rows.append(
            _row(
                "(b) training: time to 0.85",
                med["ours"],
                med["baseline"],
                "s",
                f"<= {r['target_ratio']}x",
                r["met"],
            )
        )
    if r := results.get("simulate"):
        by = {row["method"]: row for row in r["rows"]}
        bare = by[r["baseline"]]["median_s"] * 1e3
        rows.append(
            _row(
                "(c) simulate(batch=...) to xarray",
                by[bench_simulate.MAIN]["median_s"] * 1e3,
                bare,
                "ms",
                f"<= {r['target_ratio']}x",
                r["met"],
            )
        )
        rows.append(
            _row(
                "(c) simulate(1000, seed), draws trials",
                by["simulate(1000, seed)"]["median_s"] * 1e3,
                bare,
                "ms",
                "(info)",
                None,
            )
        )
    if r := results.get("lyapunov"):
        by = r["rows"]
        ref = by[0]["ms_per_traj_step"]
        for row, target in ((by[1], r["target_top"]), (by[2], r["target_full"])):
            met = ref / row["ms_per_traj_step"] >= target
            label = f"(d) lyapunov: {row['method']}"
            rows.append(_row(label, row["ms_per_traj_step"], ref, "ms/traj-step",
                             f"<= 1/{target:g}x", met))  # fmt: skip
    if r := results.get("perturb"):
        for row in r["rows"]:
            label = f"(e) perturb: {row['conditions']}, {row['units']} units"
            met = row["speed-up"] >= r["target_ratio"]
            rows.append(_row(label, row["batched s"], row["loop s"], "s",
                             f"<= 1/{r['target_ratio']:g}x", met))  # fmt: skip
    if r := results.get("navigation"):
        by = {row["method"]: row for row in r["rows"]}
        ours = by[bench_navigation.MAIN]
        for base in (bench_navigation.BASELINE, bench_navigation.NUMPY_LOOP):
            rate = ours["agent_steps_per_s"]
            met = rate / by[base]["agent_steps_per_s"] >= r["target_ratio"]
            rows.append(_row(f"(f) navigation vs {base}", rate, by[base]["agent_steps_per_s"],
                             "agent-steps/s", f">= {r['target_ratio']:g}x", met))  # fmt: skip
    if r := results.get("renyi"):
        by = {row["method"]: row for row in r["rows"]}
        ours = 1e6 / by[bench_renyi.MAIN]["us_per_agent_trial"]
        loops = [row for m, row in by.items() if m.startswith(bench_renyi.BASELINE)]
        base = 1e6 / (sum(row["us_per_agent_trial"] for row in loops) / len(loops))
        rows.append(_row("(g) renyi: vectorised vs published loop", ours, base,
                         "agent-trials/s", f">= {r['target_ratio']:g}x", r["met"]))  # fmt: skip
        suff = 1e6 / by[bench_renyi.SUFFICIENT]["us_per_agent_trial"]
        rows.append(_row("(g) renyi: vs loop with sufficient stats", ours, suff,
                         "agent-trials/s", "(info)", None))  # fmt: skip
    if r := results.get("complex"):
        for row in r["layers"]:
            rows.append(_row(f"(h) complex {row['layer']}, fwd+bwd", row["complex_ms"],
                             row["real_ms"], "ms", f"<= {r['target_ratio']:g}x", row["met"]))  # fmt: skip
        by = {row["model"]: row for row in r["training"]}
        base = by[bench_complex.BASELINE]
        for name, row in by.items():
            if name != bench_complex.BASELINE:
                rows.append(_row(f"(h) {name}: train steps/s", row["steps_per_s"],
                                 base["steps_per_s"], "steps/s", "(info)", None))  # fmt: skip
    if r := results.get("rls"):
        by = r["rows"]
        base = by[0]["s/epoch"]
        rows.append(_row("(i) rls: torch epoch vs numpy CURBD loop", by[1]["s/epoch"], base, "s",
                         f"<= 1/{r['target_ratio']:g}x", r["met"]))  # fmt: skip
        rows.append(_row("(i) rls: batched, per trial-epoch", by[2]["s/trial-epoch"], base, "s",
                         "(info)", None))  # fmt: skip
    if r := results.get("latent"):
        by = r["rows"]
        rows.append(_row("(j) latent: training trials/s", by[0]["trials_per_s"],
                         by[1]["trials_per_s"], "trials/s", "(info)", None))  # fmt: skip
    return rows


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--only", nargs="+", choices=list(BENCHMARKS), help="run only these benchmarks"
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv, _extra)
    set_threads(1)
    out = Path(args.json) if args.json else DEFAULT_JSON
    names = args.only or list(BENCHMARKS)
    results: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    for name in names:
        sub = ["--quick"] if args.quick else []
        sub += ["--json", str(out.with_name(f"{name}.json"))]
        t0 = time.perf_counter()
        results[name] = BENCHMARKS[name](sub)
        seconds[name] = time.perf_counter() - t0
    summary = summarise(results)
    mode = "quick" if args.quick else "full"
    print_table(summary, f"Summary ({mode}; ratio = ours / baseline, same run, 1 thread)")
    print("benchmark run times: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()))
    combined = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "summary": summary,
        "run_seconds": seconds,
        "results": results,
        "environment": environment(),
    }
    write_json(combined, out)
    print(f"wrote {out}")
    return combined


if __name__ == "__main__":
    main()
