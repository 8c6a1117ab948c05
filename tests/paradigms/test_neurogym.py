"""The neurogym adapter against what neurogym itself produces."""

import numpy as np
import pytest

import paradigms

PDM = "neurogym/PerceptualDecisionMaking-v0"


def test_batch_equals_the_tasks_own_trials():
    """Row i of a batch is exactly trial i of the seeded environment's new_trial()."""
    import gymnasium as gym

    task = paradigms.make(PDM)
    batch = task.batch(5, rng=0)
    seed = int(np.random.default_rng(0).integers(0, 2**31 - 1))
    env = gym.make("PerceptualDecisionMaking-v0", disable_env_checker=True).unwrapped
    env.seed(seed)
    for i in range(5):
        trial = env.new_trial()
        n = len(env.ob)
        np.testing.assert_array_equal(batch.inputs[i, :n], env.ob)
        np.testing.assert_array_equal(batch.targets[i, :n], env.gt)
        assert batch.trials.loc[i, "ground_truth"] == trial["ground_truth"]
        assert batch.trials.loc[i, "coh"] == trial["coh"]


def test_default_mask_is_the_decision_period():
    b = paradigms.make(PDM).batch(10, rng=1)
    start, end = b.periods["decision"].T
    for i in range(10):
        expected = np.zeros(b.n_steps, np.float32)
        expected[start[i] : end[i]] = 1
        np.testing.assert_array_equal(b.mask[i], expected)
    # the decision target is the ground truth's action (fixation is action 0)
    assert (b.targets[b.mask > 0] == b.trials["ground_truth"].to_numpy() + 1).all()


def test_mask_options():
    task = paradigms.make(PDM, mask="all")
    b = task.batch(4, rng=0)
    np.testing.assert_array_equal(b.mask, b.valid.astype(np.float32))
    b2 = paradigms.make(PDM, mask=["stimulus", "decision"]).batch(4, rng=0)
    assert (
        b2.mask.sum(1) == (b2.periods["stimulus"] @ [-1, 1]) + (b2.periods["decision"] @ [-1, 1])
    ).all()
    with pytest.raises(ValueError, match="not in task"):
        paradigms.make(PDM, mask="nonsense").batch(2, rng=0)


def test_variable_length_trials_are_padded_and_masked():
    b = paradigms.make("neurogym/ReadySetGo-v0").batch(32, rng=0)
    assert len(set(b.lengths.tolist())) > 1
    assert not b.mask[~b.valid].any()


def test_kwargs_reach_the_task():
    task = paradigms.make(PDM, dt=20, timing={"stimulus": 500})
    b = task.batch(2, rng=0)
    assert task.dt == 20.0 == b.dt
    assert (b.periods["stimulus"] @ [-1, 1] == 500 // 20).all()


def test_performance_is_decision_accuracy():
    task = paradigms.make(PDM)
    b = task.batch(50, rng=3)
    perfect = np.eye(task.n_outputs)[b.targets] * 10.0
    assert task.performance(perfect, b).mean() == 1.0
    wrong = np.roll(perfect, 1, axis=-1)
    assert task.performance(wrong, b).mean() == 0.0


def test_yang19_rule_is_angle_and_fixation_based():
    task = paradigms.make("neurogym/yang19.go-v0")
    b = task.batch(20, rng=0)
    n_ring = task.n_outputs - 1
    last = b.lengths - 1
    target = b.targets[np.arange(20), last]
    out = np.full((20, b.n_steps, task.n_outputs), -10.0)
    # respond one ring unit off (2π/16 < 0.2π): still correct by Yang et al.'s rule
    off = (target - 1 + 1) % n_ring + 1
    out[np.arange(20), last, off] = 10.0
    assert task.performance(out, b).mean() == 1.0
    # respond at the opposite side: wrong
    out[np.arange(20), last] = -10.0
    out[np.arange(20), last, (target - 1 + n_ring // 2) % n_ring + 1] = 10.0
    assert task.performance(out, b).mean() == 0.0
    # keep fixating: wrong on response trials
    out[np.arange(20), last] = -10.0
    out[np.arange(20), last, 0] = 10.0
    assert task.performance(out, b).mean() == 0.0
