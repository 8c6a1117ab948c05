"""fit_latent: ground truth (co-smoothing beats the PSTH baseline), controls, splits,
determinism, early stopping and checkpoint resume."""

import numpy as np
import pandas as pd
import pytest
import torch

from neurosim._recordings import make_recording
from neurosim.fit._latent_fit import fit_latent
from neurosim.fit._metrics import bits_per_spike
from neurosim.models._latent import LatentRNN

FAST = {"n_latent": 16, "encoder_hidden": 32, "max_epochs": 60, "patience": 15,
        "batch_size": 16, "quiet": True, "device": "cpu"}  # fmt: skip
TINY = {"n_latent": 4, "encoder_hidden": 8, "batch_size": 8, "quiet": True, "device": "cpu"}


def teacher(n_trials=150, n_bins=40, n_neurons=30, seed=0, dt=20.0):
    """A 3-D latent system (damped rotation with a 400 ms period, plus a decaying dimension)
    started from a condition-dependent, trial-varying initial state and observed through
    ``exp(C x + d)`` Poisson counts. Returns the recording, true rates and latents."""
    rng = np.random.default_rng(seed)
    th = 2 * np.pi * dt / 400.0
    a = np.zeros((3, 3))
    a[:2, :2] = 0.98 * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    a[2, 2] = 0.95
    cond = rng.integers(0, 4, n_trials)
    centres = np.array([[1.5, 0, 1], [0, 1.5, -1], [-1.5, 0, 1], [0, -1.5, -1]])
    x = np.empty((n_trials, n_bins, 3))
    h = centres[cond] + 0.6 * rng.normal(size=(n_trials, 3))
    for t in range(n_bins):
        h = h @ a.T
        x[:, t] = h
    c = 0.5 * rng.normal(size=(n_neurons, 3))
    lam = np.exp(x @ c.T + np.log(rng.uniform(0.1, 0.5, n_neurons)))
    rec = make_recording(
        rng.poisson(lam), dt=dt, trials=pd.DataFrame({"condition": cond}), behaviour=x[..., :2]
    )
    return rec, lam


@pytest.fixture(scope="module")
def recording():
    return teacher()


@pytest.fixture(scope="module")
def fitted(recording):
    rec, _ = recording
    return fit_latent(rec, conditions="condition", **FAST)


class TestGroundTruth:
    def test_co_bps_positive_and_beats_the_smoothed_psth_baseline(self, recording, fitted):
        rec, lam = recording
        m, s = fitted.metrics, fitted.split
        v, ho = s.val, s.held_out
        truth = bits_per_spike(lam[v][..., ho], rec.activity.values[v][..., ho])
        assert m["co_bps"] > 0.1 and m["co_bps"] > m["baseline_co_bps"] + 0.03
        assert m["co_bps"] < truth + 0.05  # the true rates bound what a model can reach
        assert m["heldin_bps"] > m["baseline_co_bps"]
        assert m["decoding_r2"] > 0.7 and 0 < m["psth_r2"] <= 1

    def test_shuffled_held_out_neurons_score_near_zero(self, recording):
        rec, _ = recording
        held_out = np.arange(0, 30, 4)
        act = rec.activity.values.copy()
        perm = np.random.default_rng(5).permutation(act.shape[0])
        act[:, :, held_out] = act[perm][:, :, held_out]  # pairing with held-in neurons lost
        control = rec.copy()
        control["activity"] = (("trial", "time", "unit"), act)
        m = fit_latent(control, held_out_neurons=held_out, conditions="condition", **FAST).metrics
        assert m["co_bps"] < 0.03 and m["co_bps"] < m["baseline_co_bps"] + 0.02
        assert m["heldin_bps"] > 0.1  # the held-in neurons are still fitted


class TestResult:
    def test_split_is_disjoint_complete_and_seeded(self, recording, fitted):
        s = fitted.split
        assert np.intersect1d(s.train, s.val).size == 0 and s.test.size == 0
        assert np.array_equal(np.union1d(s.train, s.val), np.arange(150))
        assert len(s.val) == 30 and len(s.held_out) == round(0.25 * 30)
        assert np.array_equal(np.union1d(s.held_in, s.held_out), np.arange(30))
        assert fitted.model.held_in == s.held_in.tolist()
        assert isinstance(fitted.model, LatentRNN) and not fitted.model.training

    def test_predictions_dataset(self, recording, fitted):
        rec, _ = recording
        p, s = fitted.predictions, fitted.split
        assert p["rate"].dims == ("trial", "time", "unit") and (p["rate"] > 0).all()
        assert np.array_equal(p.trial.values, s.val) and set(p.split.values) == {"val"}
        assert np.array_equal(np.flatnonzero(p.held_out.values), s.held_out)
        np.testing.assert_array_equal(p.activity.values, rec.activity.values[s.val])
        assert p.state.sizes["latent"] == 16 and "condition" in p.coords
        np.testing.assert_allclose(
            bits_per_spike(p.rate.values[..., s.held_out], p.activity.values[..., s.held_out]),
            fitted.metrics["co_bps"], rtol=1e-4,
        )  # fmt: skip

    def test_best_epoch_weights_are_returned(self, fitted):
        h, m = fitted.history, fitted.metrics
        best = int(h["epoch"][h["val_nll"].idxmin()])
        assert m["best_epoch"] == best
        np.testing.assert_allclose(m["nll"], h["val_nll"].min(), rtol=1e-5)


def test_gaussian_fit_on_rates_reports_r2_and_pvar(recording):
    rec, lam = recording
    rng = np.random.default_rng(3)
    rates = (np.log(lam) + 0.3 * rng.normal(size=lam.shape)).astype(np.float32)
    data = make_recording(rates, dt=20.0, trials=pd.DataFrame({"condition": rec.condition.values}))
    fit = fit_latent(data, test_fraction=0.2, **{**FAST, "max_epochs": 40})
    m = fit.metrics
    assert fit.model.likelihood == "gaussian" and "co_bps" not in m
    assert m["co_pvar"] > 0.7 and m["co_pvar"] > m["baseline_co_pvar"] + 0.05
    assert m["test_co_r2"] > m["test_baseline_co_r2"] and len(fit.split.test) == 30


def test_same_seed_same_fit_other_seed_other_split():
    counts = np.random.default_rng(0).poisson(1.0, size=(24, 12, 8))
    rec = make_recording(counts, dt=20.0)
    a, b = (fit_latent(rec, max_epochs=3, seed=1, **TINY) for _ in range(2))
    pd.testing.assert_frame_equal(a.history.drop(columns="elapsed_s"),
                                  b.history.drop(columns="elapsed_s"))  # fmt: skip
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    c = fit_latent(rec, max_epochs=1, seed=2, **TINY)
    assert not np.array_equal(a.split.val, c.split.val)


def test_early_stopping_on_unstructured_data():
    counts = np.random.default_rng(0).poisson(1.0, size=(30, 20, 10))
    fit = fit_latent(make_recording(counts, dt=20.0), max_epochs=100, patience=3, lr=0.03,
                     kl_weight=0.0, **{**TINY, "n_latent": 8, "encoder_hidden": 16})  # fmt: skip
    assert fit.stopped_early and len(fit.history) == fit.metrics["best_epoch"] + 3 < 100


def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path):
    counts = np.random.default_rng(1).poisson(1.5, size=(24, 12, 8))
    rec = make_recording(counts, dt=20.0)
    whole = fit_latent(rec, max_epochs=6, **TINY)
    first = fit_latent(rec, max_epochs=3, checkpoint_dir=tmp_path, **TINY)
    assert first.checkpoint is not None and len(first.history) == 3
    resumed = fit_latent(rec, max_epochs=6, checkpoint_dir=tmp_path, **TINY)
    cols = ["epoch", "train_loss", "train_nll", "kl", "kl_weight", "val_nll"]
    pd.testing.assert_frame_equal(resumed.history[cols], whole.history[cols])
    for k, v in whole.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert resumed.metrics == whole.metrics
    with pytest.raises(ValueError, match="different fit"):
        fit_latent(rec, max_epochs=7, checkpoint_dir=tmp_path, **{**TINY, "n_latent": 5})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"held_out_neurons": 1.0}, "held_out_neurons"),
        ({"held_out_neurons": [0, 99]}, "held_out_neurons"),
        ({"held_out_neurons": list(range(8))}, "no held-in"),
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"test_fraction": [0, 0]}, "test_fraction"),
        ({"inputs": "given"}, "no 'input'"),
        ({"inputs": "maybe"}, "inputs"),
        ({"conditions": "stimulus"}, "trial coordinate"),
        ({"behaviour": "speed"}, "behaviour"),
        ({"lr": 0}, "lr"),
        ({"patience": 0}, "patience"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, match):
    rec = make_recording(np.ones((10, 5, 8), dtype=int), dt=20.0)
    with pytest.raises(ValueError, match=match):
        fit_latent(rec, **{**TINY, "max_epochs": 1, **kwargs})
