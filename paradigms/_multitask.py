"""Several paradigms as one: trials drawn from a task set, with rule inputs (Yang et al. 2019)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._base import Paradigm, TrialBatch, as_generator, make, register

#: Five yang19 tasks, one per computation, used to pre-train task-primitive modules.
YANG19_PRIMITIVES = (
    "neurogym/yang19.go-v0",  # respond towards a stimulus when the go cue comes
    "neurogym/yang19.dlygo-v0",  # hold a direction through a delay
    "neurogym/yang19.anti-v0",  # invert a direction
    "neurogym/yang19.dm1-v0",  # integrate noisy evidence
    "neurogym/yang19.dms-v0",  # compare two stimuli (match / non-match)
)
#: Nine other yang19 tasks built from those computations: the multi-task corpus.
YANG19_CORPUS = (
    "neurogym/yang19.rtgo-v0",
    "neurogym/yang19.rtanti-v0",
    "neurogym/yang19.dlyanti-v0",
    "neurogym/yang19.dm2-v0",
    "neurogym/yang19.ctxdm1-v0",
    "neurogym/yang19.multidm-v0",
    "neurogym/yang19.dlydm1-v0",
    "neurogym/yang19.dnms-v0",
    "neurogym/yang19.dmc-v0",
)


def _pad(a: np.ndarray, t: int, fill: Any = 0) -> np.ndarray:
    if a.shape[1] == t:
        return a
    width = [(0, 0), (0, t - a.shape[1])] + [(0, 0)] * (a.ndim - 2)
    return np.pad(a, width, constant_values=fill)


def subset_batch(batch: TrialBatch, index: np.ndarray) -> TrialBatch:
    """The trials ``index`` of ``batch`` (same padded length)."""
    index = np.asarray(index)
    return TrialBatch(
        inputs=batch.inputs[index],
        targets=batch.targets[index],
        mask=batch.mask[index],
        trials=batch.trials.iloc[index].reset_index(drop=True).rename_axis("trial"),
        dt=batch.dt,
        valid=batch.valid[index],
        target_kind=batch.target_kind,
        periods={k: v[index] for k, v in batch.periods.items()},
        covariates={k: v[index] for k, v in batch.covariates.items()},
    )


class MultiTaskParadigm(Paradigm):
    """Trials drawn uniformly from several paradigms, with a one-hot rule input per task.

    Every task must share ``dt``, ``n_inputs``, ``n_outputs`` and ``target_kind`` (the
    yang19 collection does). Each trial comes from one task; its inputs are the task's
    own followed by ``K`` rule channels (1 for its task on its own steps, 0 elsewhere,
    as in Yang et al. 2019), shorter trials are padded. ``trials`` gains ``task`` (id)
    and ``rule`` (index) columns, and :meth:`performance` scores each trial with its
    own task's rule (Yang's correctness rule for ``yang19.*``).

    Parameters
    ----------
    tasks : sequence of str or Paradigm
        Paradigm ids (made with ``task_kwargs``) or paradigms.
    rule_inputs : bool, default True
        Append the ``K`` rule channels (False: the network must infer the task).
    task_kwargs : dict, optional
        Passed to :func:`paradigms.make` for every id.

    Examples
    --------
    >>> import paradigms
    >>> corpus = paradigms.make("multitask/yang19-corpus")
    >>> corpus.n_tasks, corpus.n_inputs, corpus.n_outputs
    (9, 42, 17)
    >>> batch = corpus.batch(16, rng=0)
    >>> sorted(set(batch.trials["task"]))[:2]
    ['neurogym/yang19.ctxdm1-v0', 'neurogym/yang19.dlyanti-v0']
    >>> one = corpus.task_batch("neurogym/yang19.dmc-v0", 4, rng=0)
    >>> one.inputs[0, 0, -9:].tolist()  # the rule channels: this is task 8 of 9
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    """

    def __init__(
        self,
        tasks: Sequence[str | Paradigm],
        *,
        rule_inputs: bool = True,
        task_kwargs: dict[str, Any] | None = None,
        id: str = "multitask/custom",
    ) -> None:
        if isinstance(tasks, str) or len(tasks) < 1:
            raise ValueError(f"tasks must be a non-empty list of paradigm ids, got {tasks!r}")
        kw = dict(task_kwargs or {})
        self.tasks = [make(t, **kw) if isinstance(t, str) else t for t in tasks]
        self.task_ids = [t.id for t in self.tasks]
        if len(set(self.task_ids)) != len(self.task_ids):
            raise ValueError(f"tasks must be distinct, got {self.task_ids}")
        first = self.tasks[0]
        for t in self.tasks[1:]:
            for attr in ("dt", "n_inputs", "n_outputs", "target_kind"):
                if getattr(t, attr) != getattr(first, attr):
                    raise ValueError(
                        f"every task must share {attr}: {first.id} has {getattr(first, attr)!r}, "
                        f"{t.id} has {getattr(t, attr)!r}"
                    )
        self.id = id
        self.rule_inputs = bool(rule_inputs)
        self.dt, self.target_kind = first.dt, first.target_kind
        self.n_task_inputs = first.n_inputs
        self.n_inputs = first.n_inputs + (len(self.tasks) if self.rule_inputs else 0)
        self.n_outputs = first.n_outputs
        self.kwargs = {"tasks": self.task_ids, "rule_inputs": self.rule_inputs, "task_kwargs": kw}

    @property
    def n_tasks(self) -> int:
        """Number of tasks ``K``."""
        return len(self.tasks)

    def _index(self, task: str | int) -> int:
        if isinstance(task, int | np.integer) and 0 <= task < self.n_tasks:
            return int(task)
        if task in self.task_ids:
            return self.task_ids.index(task)
        raise KeyError(f"task {task!r} is not in this paradigm; it has {self.task_ids}")

    def batch(self, n_trials: int, rng: np.random.Generator | int | None = None) -> TrialBatch:
        """``n_trials`` trials, each from a task drawn uniformly (seeded)."""
        g = as_generator(rng)
        which = g.integers(self.n_tasks, size=int(n_trials))
        seeds = g.integers(2**63, size=self.n_tasks)
        parts = {
            k: self._rule_batch(k, int((which == k).sum()), np.random.default_rng(seeds[k]))
            for k in range(self.n_tasks)
            if (which == k).any()
        }
        return self._merge(parts, which)

    def task_batch(
        self, task: str | int, n_trials: int, rng: np.random.Generator | int | None = None
    ) -> TrialBatch:
        """``n_trials`` trials of one task (by id or index), with its rule input."""
        return self._rule_batch(self._index(task), int(n_trials), as_generator(rng))

    def _rule_batch(self, k: int, n: int, rng: np.random.Generator) -> TrialBatch:
        b = self.tasks[k].batch(n, rng)
        inputs = b.inputs
        if self.rule_inputs:
            rule = np.zeros((*b.valid.shape, self.n_tasks), np.float32)
            rule[..., k] = b.valid
            inputs = np.concatenate([inputs, rule], axis=-1)
        trials = b.trials.copy()
        trials.insert(0, "rule", k)
        trials.insert(0, "task", self.task_ids[k])
        return TrialBatch(
            inputs, b.targets, b.mask, trials, b.dt, b.valid, b.target_kind, b.periods
        )

    def _merge(self, parts: dict[int, TrialBatch], which: np.ndarray) -> TrialBatch:
        t = max(p.n_steps for p in parts.values())
        order = np.concatenate([np.flatnonzero(which == k) for k in parts])
        rows = np.empty_like(order)
        rows[order] = np.arange(len(order))  # trial i sits at position rows[i] of the stack

        def stack(get, fill=0) -> np.ndarray:
            return np.concatenate([_pad(get(p), t, fill) for p in parts.values()])[rows]

        names = sorted({n for p in parts.values() for n in p.periods})
        periods = {
            n: np.concatenate(
                [p.periods.get(n, np.full((p.n_trials, 2), -1, np.int64)) for p in parts.values()]
            )[rows]
            for n in names
        }
        trials = pd.concat([p.trials for p in parts.values()], ignore_index=True).iloc[rows]
        return TrialBatch(
            inputs=stack(lambda p: p.inputs),
            targets=stack(lambda p: p.targets),
            mask=stack(lambda p: p.mask),
            trials=trials.reset_index(drop=True).rename_axis("trial"),
            dt=self.dt,
            valid=stack(lambda p: p.valid, False),
            target_kind=self.target_kind,
            periods=periods,
        )

    def performance(self, outputs: np.ndarray, batch: TrialBatch) -> np.ndarray:
        """Per-trial performance, each trial scored by its own task."""
        outputs = np.asarray(outputs)
        rule = batch.trials["rule"].to_numpy()
        out = np.empty(batch.n_trials)
        for k in np.unique(rule):
            idx = np.flatnonzero(rule == k)
            out[idx] = self.tasks[int(k)].performance(outputs[idx], subset_batch(batch, idx))
        return out

    def task_paradigm(self, task: str | int) -> Paradigm:
        """A paradigm that draws only ``task`` (by id or index), with its rule input.

        Its trials are :meth:`task_batch` trials (the task's own inputs followed by the
        ``K`` rule channels, 1 at the task's index), scored with the task's own rule, so
        a network trained on this multi-task paradigm can be trained further, evaluated or
        perturbed (:func:`analyses.compute_robustness`) one task at a time. Its id is
        ``"<multi-task id>[<task id>]"``.

        Raises
        ------
        KeyError
            If ``task`` is not one of :attr:`task_ids` (nor an index into them).

        Examples
        --------
        >>> import paradigms
        >>> corpus = paradigms.make("multitask/yang19-corpus")
        >>> dmc = corpus.task_paradigm("neurogym/yang19.dmc-v0")
        >>> dmc.id
        'multitask/yang19-corpus[neurogym/yang19.dmc-v0]'
        >>> dmc.n_inputs, dmc.batch(2, rng=0).trials["rule"].tolist()
        (42, [8, 8])
        """
        return _TaskView(self, self._index(task))


class _TaskView(Paradigm):
    """One task of a :class:`MultiTaskParadigm` (see :meth:`MultiTaskParadigm.task_paradigm`)."""

    def __init__(self, parent: MultiTaskParadigm, index: int) -> None:
        self.parent, self.index = parent, index
        self.task = parent.task_ids[index]
        self.id = f"{parent.id}[{self.task}]"
        self.dt, self.target_kind = parent.dt, parent.target_kind
        self.n_inputs, self.n_outputs = parent.n_inputs, parent.n_outputs
        self.kwargs = {**parent.kwargs, "task": self.task}

    def batch(self, n_trials: int, rng: np.random.Generator | int | None = None) -> TrialBatch:
        """``n_trials`` trials of the task, with its rule input (seeded)."""
        return self.parent.task_batch(self.index, n_trials, rng)

    def performance(self, outputs: np.ndarray, batch: TrialBatch) -> np.ndarray:
        """Per-trial performance by the task's own rule."""
        return self.parent.tasks[self.index].performance(np.asarray(outputs), batch)


def _register() -> None:
    register(
        "multitask/yang19-corpus",
        lambda **kw: MultiTaskParadigm(
            kw.pop("tasks", YANG19_CORPUS), id="multitask/yang19-corpus", **kw
        ),
    )
    register(
        "multitask/yang19-primitives",
        lambda **kw: MultiTaskParadigm(
            kw.pop("tasks", YANG19_PRIMITIVES), id="multitask/yang19-primitives", **kw
        ),
    )
