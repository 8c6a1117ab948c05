"""simulate adds the per-step variables a model derives from its run (attention, active modules)."""

import numpy as np
import torch

import neurosim
import paradigms
from neurosim.models import RateRNN


class TracedRNN(RateRNN):
    """A RateRNN that reports, per step, which of two halves of its units is 'active'."""

    module_names = ("first", "second")
    slot_names = ("a", "b", "c")

    def trajectory_variables(self, inputs, states):
        h = np.asarray(states)
        half = h.shape[2] // 2
        active = np.stack([h[..., :half].mean(-1) > 0, h[..., half:].mean(-1) > 0], axis=-1)
        attn = np.broadcast_to(inputs[..., None, :3], (*h.shape[:2], 2, 3)).astype(np.float32)
        return {
            "active": (("trial", "time", "module"), active),
            "attention": (("trial", "time", "module", "slot"), attn),
        }


def _setup():
    task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
    torch.manual_seed(0)
    return task, TracedRNN(task.n_inputs, 6, task.n_outputs, dt=task.dt, tau=200.0)


def test_variables_land_in_the_dataset_and_survive_save_load(tmp_path):
    task, net = _setup()
    ds = neurosim.simulate(net, task, n_trials=4, seed=0)
    assert ds["active"].dims == ("trial", "time", "rim")
    assert ds["rim"].values.tolist() == ["first", "second"]
    assert ds["slot"].values.tolist() == ["a", "b", "c"]
    want = ds["state"].values[..., :3].mean(-1) > 0
    np.testing.assert_array_equal(ds["active"].values[..., 0], want)
    np.testing.assert_array_equal(ds["attention"].values[..., 1, :], ds["input"].values)
    back = neurosim.load(neurosim.save(ds, tmp_path / "t.nc"))
    np.testing.assert_array_equal(back["active"].values, ds["active"].values)


def test_conditions_get_their_own_variables():
    task, net = _setup()
    pert = [
        None,
        neurosim.Perturbation(target="units", units=[3, 4, 5], operation="lesion", strength=1.0),
    ]
    ds = neurosim.simulate(net, task, n_trials=3, seed=0, perturbation=pert)
    assert ds["active"].dims == ("condition", "trial", "time", "rim")
    for c in range(2):
        want = ds["state"].values[c][..., 3:].mean(-1) > 0
        np.testing.assert_array_equal(ds["active"].values[c][..., 1], want)
