"""Multi-task paradigm: rule inputs, padding, per-task scoring, the named yang19 task sets."""

import numpy as np
import pytest

import paradigms
from paradigms import YANG19_CORPUS, YANG19_PRIMITIVES, MultiTaskParadigm


@pytest.fixture(scope="module")
def corpus():
    return paradigms.make("multitask/yang19-corpus")


def test_named_sets_are_nine_and_five_distinct_yang19_tasks():
    assert len(YANG19_CORPUS) == 9 and len(YANG19_PRIMITIVES) == 5
    assert not set(YANG19_CORPUS) & set(YANG19_PRIMITIVES)
    assert all(t.startswith("neurogym/yang19.") for t in YANG19_CORPUS + YANG19_PRIMITIVES)


def test_rule_channels_are_one_hot_on_the_trials_own_steps(corpus):
    b = corpus.batch(200, rng=3)
    rule = b.inputs[..., corpus.n_task_inputs :]
    k = b.trials["rule"].to_numpy()
    np.testing.assert_array_equal(rule.sum(-1), b.valid.astype(np.float32))
    np.testing.assert_array_equal(rule[np.arange(200), 0].argmax(-1), k)
    assert [corpus.task_ids[i] for i in k] == b.trials["task"].tolist()


def test_padding_is_inert(corpus):
    b = corpus.batch(100, rng=1)
    pad = ~b.valid
    assert pad.any()  # the tasks have different lengths
    assert (b.inputs[pad] == 0).all() and (b.mask[pad] == 0).all()
    lengths = {t: corpus.tasks[i].batch(5, rng=0).n_steps for i, t in enumerate(corpus.task_ids)}
    assert b.n_steps <= max(lengths.values())


def test_task_batch_is_the_tasks_own_batch_plus_its_rule(corpus):
    k = corpus.task_ids.index("neurogym/yang19.dmc-v0")
    own = corpus.tasks[k].batch(6, rng=11)
    mine = corpus.task_batch("neurogym/yang19.dmc-v0", 6, rng=11)
    np.testing.assert_array_equal(mine.inputs[..., : corpus.n_task_inputs], own.inputs)
    np.testing.assert_array_equal(mine.targets, own.targets)
    assert (mine.trials["rule"] == k).all()


def test_tasks_are_drawn_uniformly(corpus):
    counts = corpus.batch(1800, rng=0).trials["task"].value_counts()
    assert len(counts) == 9 and counts.min() > 200 - 4 * np.sqrt(200)


def test_each_trial_is_scored_by_its_own_task(corpus):
    b = corpus.batch(120, rng=5)
    rng = np.random.default_rng(0)
    outputs = rng.normal(size=(*b.targets.shape, corpus.n_outputs)).astype(np.float32)
    # make every other trial perfect: a large logit on the target class at every step
    perfect = np.arange(0, 120, 2)
    onehot = np.eye(corpus.n_outputs, dtype=np.float32)[b.targets] * 50.0
    outputs[perfect] = onehot[perfect]
    perf = corpus.performance(outputs, b)
    assert (perf[perfect] == 1.0).all()
    for k, task in enumerate(corpus.tasks):
        idx = np.flatnonzero(b.trials["rule"].to_numpy() == k)
        sub = paradigms.subset_batch(b, idx)
        np.testing.assert_array_equal(perf[idx], task.performance(outputs[idx], sub))


def test_without_rule_inputs():
    mt = MultiTaskParadigm(YANG19_PRIMITIVES, rule_inputs=False)
    assert mt.n_inputs == mt.n_task_inputs == 33
    assert mt.batch(8, rng=0).inputs.shape[-1] == 33


def test_bad_task_sets_are_explained():
    with pytest.raises(ValueError, match="every task must share n_inputs"):
        MultiTaskParadigm(["neurogym/yang19.go-v0", "neurogym/PerceptualDecisionMaking-v0"])
    with pytest.raises(ValueError, match="distinct"):
        MultiTaskParadigm(["neurogym/yang19.go-v0", "neurogym/yang19.go-v0"])
    with pytest.raises(KeyError, match="not in this paradigm"):
        paradigms.make("multitask/yang19-primitives").task_batch("neurogym/yang19.dmc-v0", 2)


def test_task_paradigm_draws_one_task_with_its_rule_and_scores_by_its_rule(corpus):
    task = "neurogym/yang19.dmc-v0"
    k = corpus.task_ids.index(task)
    view = corpus.task_paradigm(task)
    assert view.id == f"multitask/yang19-corpus[{task}]"
    assert (view.n_inputs, view.n_outputs, view.dt) == (42, 17, corpus.dt)
    assert corpus.task_paradigm(k).id == view.id
    b = view.batch(40, rng=2)
    same = corpus.task_batch(task, 40, rng=2)
    np.testing.assert_array_equal(b.inputs, same.inputs)
    assert (b.trials["task"] == task).all() and (b.trials["rule"] == k).all()
    rule = b.inputs[..., corpus.n_task_inputs :]
    np.testing.assert_array_equal(rule.argmax(-1)[b.valid], k)
    rng = np.random.default_rng(0)
    outputs = rng.normal(size=(*b.targets.shape, corpus.n_outputs)).astype(np.float32)
    outputs[::2] = np.eye(corpus.n_outputs, dtype=np.float32)[b.targets[::2]] * 50.0
    perf = view.performance(outputs, b)
    np.testing.assert_array_equal(perf, corpus.tasks[k].performance(outputs, b))
    np.testing.assert_array_equal(perf, corpus.performance(outputs, b))
    assert (perf[::2] == 1.0).all() and perf[1::2].mean() < 0.5
    with pytest.raises(KeyError, match="not in this paradigm"):
        corpus.task_paradigm("neurogym/yang19.go-v0")
