"""Registry-wide checks: every open-loop paradigm id builds a well-formed, seeded batch.

Closed-loop ids (``closed_loop = True``: the bandits) have no ``batch``; their registry-wide
contract test is in ``test_bandits.py``."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import paradigms
from paradigms import NEUROGYM_EXCLUDED

ALL_IDS = paradigms.available()
OPEN_LOOP_IDS = [i for i in ALL_IDS if not getattr(paradigms.make(i), "closed_loop", False)]


def test_every_neurogym_task_with_ob_and_gt_is_registered():
    from neurogym.envs.registration import all_envs

    registered = set(all_envs(collections=True))
    ours = {i.split("/", 1)[1] for i in paradigms.available("neurogym")}
    assert ours == registered - set(NEUROGYM_EXCLUDED)
    # neurogym 2.3: 52 ids, 5 without observations or ground truth (REFERENCES.md)
    assert len(ours) == len(registered) - 5
    assert any(i.startswith("yang19.") for i in ours)


@pytest.mark.parametrize("pid", OPEN_LOOP_IDS)
def test_batch_contract(pid):
    task = paradigms.make(pid)
    b = task.batch(6, rng=123)
    n, t = b.n_trials, b.n_steps
    assert n == 6 and b.inputs.shape == (n, t, task.n_inputs)
    assert b.inputs.dtype == np.float32 and b.mask.dtype == np.float32 and b.valid.dtype == bool
    if task.target_kind == "class":
        assert b.targets.shape == (n, t) and b.targets.dtype == np.int64
        assert b.targets.min() >= 0 and b.targets.max() < task.n_outputs
    else:
        assert b.targets.shape == (n, t, task.n_outputs)
    # trial-aligned: every trial starts at step 0 and padding is a suffix
    assert b.valid[:, 0].all()
    assert (np.diff(b.valid.astype(int), axis=1) <= 0).all()
    assert b.lengths.max() == t
    # padding carries no input, no loss weight
    assert not b.inputs[~b.valid].any() and not b.mask[~b.valid].any()
    assert (b.mask >= 0).all() and (b.mask.sum(1) > 0).all()
    assert isinstance(b.trials, pd.DataFrame) and len(b.trials) == n and b.trials.shape[1] > 0
    assert b.dt == task.dt > 0
    for span in b.periods.values():
        present = span[:, 0] >= 0
        assert (span[present, 0] <= span[present, 1]).all() and (
            span[present, 1] <= b.lengths[present]
        ).all()


@pytest.mark.parametrize("pid", OPEN_LOOP_IDS)
def test_same_seed_same_batch_other_seed_other_batch(pid):
    task = paradigms.make(pid)
    a, b = task.batch(8, rng=7), task.batch(8, rng=np.random.default_rng(7))
    task.batch(3, rng=99)  # an unrelated draw in between must not matter
    c = task.batch(8, rng=7)
    for x in (b, c):
        np.testing.assert_array_equal(a.inputs, x.inputs)
        np.testing.assert_array_equal(a.targets, x.targets)
        np.testing.assert_array_equal(a.mask, x.mask)
        pd.testing.assert_frame_equal(a.trials, x.trials)
    d = task.batch(8, rng=8)
    assert a.inputs.shape != d.inputs.shape or not np.array_equal(a.inputs, d.inputs)


def test_open_loop_ids_are_paradigms():
    assert OPEN_LOOP_IDS  # the filter must not empty the registry-wide tests
    for pid in OPEN_LOOP_IDS:
        assert isinstance(paradigms.make(pid), paradigms.Paradigm), pid


def test_unknown_id_lists_closest_ids():
    with pytest.raises(KeyError, match="neurogym/PerceptualDecisionMaking-v0"):
        paradigms.make("neurogym/PerceptualDecisionMakin")


def test_excluded_task_says_why():
    with pytest.raises(ValueError, match="no ground truth"):
        paradigms.NeurogymParadigm("EconomicDecisionMaking-v0")


def test_first_use_from_many_threads_sees_the_whole_registry():
    # a fresh interpreter, so the lazy neurogym loader has not run yet
    code = (
        "import threading, paradigms\n"
        "errors = []\n"
        "def make():\n"
        "    try:\n"
        "        paradigms.make('neurogym/PerceptualDecisionMaking-v0')\n"
        "    except Exception as err:\n"
        "        errors.append(repr(err))\n"
        "threads = [threading.Thread(target=make) for _ in range(8)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print(len(errors), len(paradigms.available()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", str(len(paradigms.available()))]
