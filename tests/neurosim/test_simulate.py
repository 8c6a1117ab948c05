"""simulate: trajectories that match the model, the batch and the schema."""

import json

import numpy as np
import pytest
import torch
import xarray as xr

import neurosim
import paradigms
from neurosim.models import RateRNN

PDM = "neurogym/PerceptualDecisionMaking-v0"


@pytest.fixture
def setup():
    task = paradigms.make(PDM)
    torch.manual_seed(0)
    return RateRNN(task.n_inputs, 16, task.n_outputs, dt=task.dt, tau=200.0), task


def test_schema_and_metadata(setup):
    net, task = setup
    ds = neurosim.simulate(net, task, 12, seed=3)
    assert ds["state"].dims == ("trial", "time", "unit")
    assert ds.sizes["trial"] == 12 and ds.sizes["unit"] == 16
    np.testing.assert_allclose(np.diff(ds["time"].values), task.dt)
    assert set(ds["module"].values) == {"rnn"}
    assert {"coh", "ground_truth"} <= set(ds["trial"].coords)
    assert ds.attrs["paradigm"] == PDM and ds.attrs["seed"] == 3
    assert json.loads(ds.attrs["model"]) == net.config()
    assert "torch" in json.loads(ds.attrs["versions"])
    neurosim.validate_trajectories(ds)


def test_states_are_the_models_states(setup):
    net, task = setup
    batch = task.batch(5, rng=0)
    ds = neurosim.simulate(net, task, batch=batch, noise=False)
    with torch.no_grad():
        y, h = net(torch.from_numpy(batch.inputs), noise=False)
    np.testing.assert_array_equal(ds["state"].values, h.numpy())
    np.testing.assert_array_equal(ds["output"].values, y.numpy())
    np.testing.assert_array_equal(ds["input"].values, batch.inputs)
    np.testing.assert_array_equal(ds["target"].values, batch.targets)


def test_same_seed_same_dataset_other_seed_differs(setup):
    net, task = setup
    a = neurosim.simulate(net, task, 6, seed=1)
    b = neurosim.simulate(net, task, 6, seed=1)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    c = neurosim.simulate(net, task, 6, seed=2)
    assert not np.array_equal(a["state"].values, c["state"].values)


def test_chunked_simulation_without_noise_matches_whole(setup):
    net, task = setup
    whole = neurosim.simulate(net, task, 10, seed=4, noise=False)
    parts = neurosim.simulate(net, task, 10, seed=4, noise=False, batch_size=3)
    np.testing.assert_allclose(parts["state"].values, whole["state"].values, rtol=1e-6, atol=1e-6)


def test_save_load_round_trip_and_batch_view(setup, tmp_path):
    net, task = setup
    ds = neurosim.simulate(net, task, 8, seed=0)
    back = neurosim.load(neurosim.save(ds, tmp_path / "t.nc"))
    xr.testing.assert_identical(back, ds)
    batch = neurosim.batch_from_trajectories(back)
    perf = task.performance(back["output"].values, batch)
    ref = task.performance(
        ds["output"].values, task.batch(8, rng=neurosim._train.seeded_rng(0, 10))
    )
    np.testing.assert_array_equal(perf, ref)


def test_bad_arguments(setup):
    net, task = setup
    with pytest.raises(ValueError, match="n_trials must be a positive integer"):
        neurosim.simulate(net, task, 0)
    with pytest.raises(ValueError, match=r"unknown Perturbation field\(s\) \['lesion'\]"):
        neurosim.simulate(net, task, 2, perturbation={"lesion": [0]})
    other = paradigms.make("neurogym/yang19.go-v0")
    with pytest.raises(ValueError, match="inputs"):
        neurosim.simulate(net, other, 2)
