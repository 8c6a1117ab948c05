"""Benchmark (b): training wall time to 0.85 accuracy, ours vs the neurogym docs recipe.

Task ``PerceptualDecisionMaking-v0`` at dt=100 ms, one thread, several seeds.

- **baseline** (the neurogym documentation's supervised-learning example, written
  out here faithfully): ``neurogym.Dataset(task, env_kwargs={"dt": 100},
  batch_size=16, seq_len=100)`` (time-major chunks of a continuous stream of
  trials), ``nn.LSTM(3, 64)`` + ``nn.Linear(64, 3)``, Adam lr 1e-2,
  ``nn.CrossEntropyLoss`` on every step of the chunk (the Dataset labels every
  step: fixation included), ``running_loss += loss.item()`` as in the docs.
  The only additions are seeds: ``torch.manual_seed(seed)`` before the model is
  built and ``ds.seed(seed)`` + one refill of its cache in set-up (the Dataset
  draws its first cache unseeded in its constructor).
- **ours**: ``RateRNN(3, 64, 3, activation="relu", tau=200, dt=100)`` trained by
  ``neurosim.train`` with batch_size 64, lr 1e-2 and every other setting at its
  default (masked cross-entropy on the decision period, recurrent noise, grad
  clip 1.0), its batches drawn by ``paradigms.make(...).batch`` inside the loop.

**Evaluation, the same for both.** Every ``EVAL_EVERY`` gradient steps the model
runs whole trials of one held-out set, ``paradigms.make(TASK).batch(1000,
rng=12345)``, from its initial state (the LSTM time-major, ours batch-first with
its seeded recurrent noise, via ``neurosim.evaluate``); the score is
``paradigm.performance(outputs, batch).mean()``, the decision-period accuracy.
Time-to-0.85 is the training wall time at the first evaluation >= 0.85.

**What is timed.** Training only, evaluation excluded in both. The baseline loop
is timed step by step with ``perf_counter`` (data, forward, backward, update),
evaluations outside it. Ours runs ``neurosim.train`` in chunks of ``EVAL_EVERY``
steps, resuming from its checkpoint each time (same batches, noise and Adam
state as one uninterrupted run), so that the held-out set can be scored between
chunks. Its time is taken from ``history.elapsed_s`` (cumulative over resumes;
the checkpoint read/write and the internal eval-set draw fall outside it). Each
chunk ends with ``train``'s own evaluation (``eval_trials=INTERNAL_EVAL``): the
duration of that step is replaced by the median of the plain steps. The
end-to-end wall times (evaluation and checkpoint I/O included) are in the JSON.
Runs are capped (``CAP`` steps); seeds alternate between the methods.

Run ``python scripts/bench/bench_training.py [--quick] [--json PATH]``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import environment, parse_args, print_table, set_threads, write_json

TASK = "PerceptualDecisionMaking-v0"
DT = 100
TARGET_ACC = 0.85
EVAL_EVERY = 10
HELD_OUT = (1000, 12345)  # trials, rng seed
CAP = {"baseline": 3000, "ours": 2000}
INTERNAL_EVAL = 50
TARGET_RATIO = 0.5


def held_out() -> tuple[Any, Any]:
    import paradigms

    task = paradigms.make(f"neurogym/{TASK}", dt=DT)
    return task, task.batch(HELD_OUT[0], rng=HELD_OUT[1])


def run_baseline(seed: int, task: Any, batch: Any) -> dict[str, Any]:
    """The neurogym docs recipe, timed per step; evaluated every EVAL_EVERY steps."""
    import neurogym as ngym
    import torch
    from torch import nn

    dataset = ngym.Dataset(TASK, env_kwargs={"dt": DT}, batch_size=16, seq_len=100)
    dataset.seed(seed)
    dataset._cache()  # redraw the first cache with the seed (set-up, untimed)
    env = dataset.env
    ob_size = env.observation_space.shape[0]
    act_size = env.action_space.n

    class Net(nn.Module):
        def __init__(self, num_h: int) -> None:
            super().__init__()
            self.lstm = nn.LSTM(ob_size, num_h)
            self.linear = nn.Linear(num_h, act_size)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, hidden = self.lstm(x)
            return self.linear(out)

    torch.manual_seed(seed)
    net = Net(num_h=64)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    x_eval = torch.from_numpy(batch.inputs).transpose(0, 1).contiguous()  # [T, B, I]

    def evaluate() -> float:
        with torch.no_grad():
            y = net(x_eval).transpose(0, 1).numpy()  # back to [B, T, O]
        return float(np.mean(task.performance(y, batch)))

    train_s, curve, running_loss = 0.0, [], 0.0
    wall0 = time.perf_counter()
    for i in range(1, CAP["baseline"] + 1):
        t0 = time.perf_counter()
        inputs, labels = dataset()
        inputs = torch.from_numpy(inputs).type(torch.float)
        labels = torch.from_numpy(labels.flatten()).type(torch.long)
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs.view(-1, act_size), labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        train_s += time.perf_counter() - t0
        if i % EVAL_EVERY == 0:
            curve.append((i, train_s, evaluate()))
            if curve[-1][2] >= TARGET_ACC:
                break
    return _summary("baseline", seed, curve, time.perf_counter() - wall0)


def run_ours(seed: int, task: Any, batch: Any) -> dict[str, Any]:
    """``neurosim.train`` in resumed chunks of EVAL_EVERY steps, scored between chunks."""
    import torch

    import neurosim

    torch.manual_seed(seed)
    net = neurosim.models.RateRNN(3, 64, 3, activation="relu", tau=200.0, dt=DT)
    cfg = {
        "batch_size": 64,
        "lr": 1e-2,
        "eval_every": EVAL_EVERY,
        "eval_trials": INTERNAL_EVAL,
        "seed": seed,
        "quiet": True,
    }
    curve: list[tuple[int, float, float]] = []
    wall0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_training_") as ckpt:
        for k in range(EVAL_EVERY, CAP["ours"] + 1, EVAL_EVERY):
            result = neurosim.train(net, task, cfg, n_steps=k, checkpoint_dir=ckpt, resume=True)
            hist = result.history
            step_s = np.diff(hist["elapsed_s"].to_numpy(), prepend=0.0)
            evaluated = hist["performance"].notna().to_numpy()
            step_s[evaluated] = np.median(step_s[~evaluated])  # drop train's own evaluations
            g = torch.Generator().manual_seed(seed)
            acc = neurosim.evaluate(net, task, batch, noise=True, generator=g)
            curve.append((k, float(step_s.sum()), acc))
            if acc >= TARGET_ACC:
                break
    return _summary("ours", seed, curve, time.perf_counter() - wall0)


def _summary(method: str, seed: int, curve: list[tuple[int, float, float]], wall: float) -> dict:
    steps, train_s, acc = curve[-1]
    reached = acc >= TARGET_ACC
    return {
        "method": method,
        "seed": seed,
        "reached": reached,
        "steps": steps,
        "time_s": train_s if reached else float("nan"),
        "train_s": train_s,
        "final_acc": acc,
        "wall_incl_eval_s": wall,
        "curve": [{"step": s, "train_s": t, "acc": a} for s, t, a in curve],
    }


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv)
    set_threads(1)
    seeds = [0] if args.quick else [0, 1, 2]
    runs: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task, batch = held_out()
        for seed in seeds:  # alternate so load drift hits both alike
            runs.append(run_baseline(seed, task, batch))
            runs.append(run_ours(seed, task, batch))

    table = [
        {
            "method": r["method"],
            "seed": r["seed"],
            "steps": r["steps"],
            "trials seen": r["steps"] * (16 if r["method"] == "baseline" else 64),
            "accuracy": r["final_acc"],
            "train s to 0.85": r["time_s"],
            "wall s incl. eval": r["wall_incl_eval_s"],
        }
        for r in runs
    ]
    mode = "quick" if args.quick else "full"
    print_table(table, f"Time to {TARGET_ACC} accuracy, {TASK} dt={DT} ms, 1 thread ({mode})")
    med = {m: _median([r["time_s"] for r in runs if r["method"] == m]) for m in CAP}
    missed = [f"{r['method']} seed {r['seed']}" for r in runs if not r["reached"]]
    ratio = med["ours"] / med["baseline"]
    print(
        f"median train s to {TARGET_ACC}: ours {med['ours']:.3g}, baseline {med['baseline']:.3g}; "
        f"ratio ours/baseline {ratio:.2f}x (target <= {TARGET_RATIO}x)."
        + (f" Not reached within the cap: {', '.join(missed)}." if missed else "")
        + f"\nEvaluated every {EVAL_EVERY} steps on {HELD_OUT[0]} held-out trials (rng "
        f"{HELD_OUT[1]}); evaluation time excluded (trials seen at batch 16 vs 64)."
    )
    result = {
        "benchmark": "training",
        "task": TASK,
        "dt": DT,
        "target_accuracy": TARGET_ACC,
        "eval_every": EVAL_EVERY,
        "held_out": {"n_trials": HELD_OUT[0], "rng": HELD_OUT[1]},
        "caps": CAP,
        "baseline": "neurogym docs recipe: Dataset(batch 16, seq_len 100) + LSTM-64, Adam 1e-2",
        "mode": mode,
        "seeds": seeds,
        "median_time_s": med,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "met": bool(ratio <= TARGET_RATIO),
        "runs": runs,
        "environment": environment(),
    }
    if args.json:
        write_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
