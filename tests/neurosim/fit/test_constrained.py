"""fit_constrained: ground truth from a teacher RateRNN, controls, the model contract, errors."""

import numpy as np
import pytest
import torch

import neurosim
import paradigms
from neurosim._checkpoint import load_checkpoint
from neurosim._recordings import make_recording, validate_recording
from neurosim.fit._constrained import ConstrainedFit, fit_constrained
from neurosim.fit._metrics import pvar
from neurosim.fit._rls import filtered_noise
from neurosim.models import RateRNN, build_model

N, B, T, DT = 20, 40, 60, 20.0
VAL = np.arange(32, 40)


def _teacher_recording(seed=0, noise_sd=0.05):
    """A random tanh RateRNN (g = 1.2, τ = 5 dt) driven by smooth random inputs from random
    initial states: activity differs from trial to trial, so a mean PSTH explains nothing."""
    g = torch.Generator().manual_seed(seed)
    net = RateRNN(3, N, 1, activation="tanh", tau=5 * DT, dt=DT, sigma_rec=0.0)
    with torch.no_grad():
        net.w_rec.copy_(1.2 * torch.randn(N, N, generator=g) / N**0.5)
        net.w_in.copy_(torch.randn(N, 3, generator=g))
        net.b.copy_(0.1 * torch.randn(N, generator=g))
        x = torch.stack([filtered_noise(T, 3, dt=DT, tau=100.0, generator=g) for _ in range(B)])
        h0 = torch.randn(B, N, generator=g)
        _, hs = net(x.float()[:, 1:], state=h0, noise=False)
        rates = torch.tanh(torch.cat([h0[:, None], hs], 1)).double().numpy()
    noisy = rates + np.random.default_rng(seed).normal(0.0, noise_sd, rates.shape)
    return make_recording(noisy, dt=DT, inputs=x.numpy())


@pytest.fixture(scope="module")
def teacher():
    return _teacher_recording()


@pytest.fixture(scope="module")
def rls_fit(teacher):
    return fit_constrained(teacher, method="rls", val_trials=VAL, quiet=True)


def _baselines(rec):
    a = rec.activity.values.astype(np.float64)
    val, train = a[VAL], np.delete(a, VAL, axis=0)
    psth = np.broadcast_to(train.mean(axis=0), val.shape)
    hold = np.broadcast_to(val[:, :1], val.shape)
    return pvar(val[:, 1:], psth[:, 1:]), pvar(val[:, 1:], hold[:, 1:])


def _shuffled(rec, seed=1):
    """Each neuron's values over all trials and times permuted independently."""
    a = rec.activity.values.copy()
    rng = np.random.default_rng(seed)
    flat = a.transpose(2, 0, 1).reshape(N, -1)
    for i in range(N):
        flat[i] = flat[i, rng.permutation(flat.shape[1])]
    return make_recording(flat.reshape(N, B, T).transpose(1, 2, 0), dt=DT, inputs=rec.input.values)


class TestGroundTruth:
    def test_baselines_explain_nothing(self, teacher):
        psth, hold = _baselines(teacher)
        assert psth < 0.05 and hold < 0.05

    def test_rls_reaches_pvar_09_on_held_out_trials(self, rls_fit):
        assert rls_fit.pvar_val >= 0.9
        assert rls_fit.pvar_train >= 0.9
        assert np.nanmedian(rls_fit.r2_val) >= 0.85
        assert rls_fit.history.pvar_val.iloc[-1] > rls_fit.history.pvar_val.iloc[0]

    def test_bptt_reaches_pvar_09_on_held_out_trials(self, teacher):
        fit = fit_constrained(
            teacher, method="bptt", val_trials=VAL, n_epochs=150, lr=0.02, g=0.8, quiet=True
        )
        assert fit.pvar_val >= 0.9
        assert fit.history.loss.iloc[-1] < 0.1 * fit.history.loss.iloc[0]

    @pytest.mark.parametrize("method", ["rls", "bptt"])
    def test_shuffled_data_score_near_zero(self, teacher, method):
        kw = {"n_epochs": 60, "lr": 0.02} if method == "bptt" else {}
        fit = fit_constrained(_shuffled(teacher), method=method, val_trials=VAL, quiet=True, **kw)
        assert -0.1 < fit.pvar_val < 0.05

    def test_predictions_are_the_free_run_of_the_returned_model(self, teacher, rls_fit):
        pred = rls_fit.predictions
        validate_recording(pred)
        assert pred.trial.values.tolist() == VAL.tolist()
        assert pred.attrs["kind"] == "rates"
        again = rls_fit.predict(teacher.isel(trial=VAL))
        np.testing.assert_allclose(pred.activity.values, again, atol=1e-5)
        np.testing.assert_allclose(pred.data.values, teacher.activity.values[VAL], atol=1e-6)
        score = pvar(pred.data.values[:, 1:], pred.activity.values[:, 1:])
        assert score == pytest.approx(rls_fit.pvar_val, abs=1e-5)
        np.testing.assert_allclose(pred.activity.values[:, 0], pred.data.values[:, 0], atol=1e-3)


class TestFittedModel:
    def test_is_a_rate_rnn_with_frozen_readout_in_data_units(self, rls_fit):
        m = rls_fit.model
        assert isinstance(rls_fit, ConstrainedFit) and isinstance(m, RateRNN)
        assert m.n_units == N and m.n_outputs == N and m.n_inputs == 3
        assert m.tau == 5 * DT and m.dt == DT and m.activation_name == "tanh"
        scale = np.asarray(rls_fit.config["scale_values"])
        np.testing.assert_allclose(m.w_out.detach().numpy(), np.diag(scale), rtol=1e-6)
        assert not m.w_out.requires_grad and not m.b_out.requires_grad
        assert m.w_rec.requires_grad

    def test_config_rebuilds_the_model(self, teacher, rls_fit):
        clone = build_model(rls_fit.model.config())
        clone.load_state_dict(rls_fit.model.state_dict())
        x = torch.as_tensor(teacher.input.values[:2])
        np.testing.assert_array_equal(clone(x)[0].detach(), rls_fit.model(x)[0].detach())

    def test_simulate_accepts_it(self, rls_fit):
        task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")  # 3 inputs, like the fit
        ds = neurosim.simulate(rls_fit.model, task, n_trials=2, seed=0, quiet=True)
        assert ds.sizes["unit"] == N and np.isfinite(ds.state.values).all()

    @pytest.mark.parametrize("mode, n_inputs", [("noise", N), ("learned", 6), ("none", 1)])
    def test_other_input_modes(self, teacher, mode, n_inputs):
        fit = fit_constrained(
            teacher, inputs=mode, n_basis=6, n_epochs=3, val_trials=VAL, quiet=True
        )
        assert fit.model.n_inputs == n_inputs
        assert fit.inputs_for(teacher).shape == (B, T, n_inputs)
        assert np.isfinite(fit.pvar_val)
        if mode != "learned":
            assert not fit.model.w_in.requires_grad


class TestOptions:
    def test_same_seed_same_fit(self, teacher):
        kw = {"n_epochs": 3, "val_fraction": 0.25, "quiet": True}
        a, b = fit_constrained(teacher, seed=3, **kw), fit_constrained(teacher, seed=3, **kw)
        c = fit_constrained(teacher, seed=4, **kw)
        assert torch.equal(a.model.w_rec, b.model.w_rec)
        np.testing.assert_array_equal(a.history.loss, b.history.loss)
        assert a.val_trials.tolist() == b.val_trials.tolist() != c.val_trials.tolist()
        assert len(a.val_trials) == 10 and len(a.train_trials) == 30

    def test_same_seed_same_bptt_fit(self, teacher):
        kw = {"method": "bptt", "n_epochs": 3, "val_trials": VAL, "quiet": True}
        a, b = fit_constrained(teacher, **kw), fit_constrained(teacher, **kw)
        assert torch.equal(a.model.w_rec, b.model.w_rec)

    def test_early_stopping_keeps_the_best_epoch(self, teacher):
        fit = fit_constrained(
            _shuffled(teacher), val_trials=VAL, patience=1, n_epochs=50, quiet=True
        )
        hist = fit.history
        assert len(hist) < 50 and any("stopped early" in note for note in fit.config["notes"])
        assert hist.pvar_val.iloc[-1] <= hist.pvar_val.iloc[:-1].max()
        assert fit.pvar_val == pytest.approx(hist.pvar_val.max(), abs=1e-3)

    def test_without_validation_trials(self, teacher):
        fit = fit_constrained(teacher.isel(trial=[0]), val_fraction=0.0, n_epochs=2, quiet=True)
        assert np.isnan(fit.pvar_val) and len(fit.val_trials) == 0
        assert fit.predictions.attrs["evaluated"] == "train"
        assert any("no validation trials" in note for note in fit.config["notes"])

    def test_counts_are_smoothed_with_a_default_and_a_note(self, teacher):
        rng = np.random.default_rng(0)
        counts = rng.poisson(2.0 * (1.0 + np.clip(teacher.activity.values[:10], -1, 1)))
        rec = make_recording(counts, dt=DT)
        with pytest.warns(UserWarning, match="smooth"):
            fit = fit_constrained(rec, n_epochs=2, inputs="none", quiet=True)
        assert fit.config["smooth_ms"] == 50.0 and "smoothed" in fit.config["notes"][0]
        assert fit.predictions.data.values.max() > 20  # rates in Hz, not counts per bin

    def test_checkpoint_holds_the_best_model(self, teacher, tmp_path):
        fit = fit_constrained(
            teacher, n_epochs=3, val_trials=VAL, checkpoint_dir=tmp_path, quiet=True
        )
        model, meta = load_checkpoint(tmp_path)
        assert meta["fit"]["method"] == "rls"
        best = int(fit.history.pvar_val.idxmax()) + 1
        assert meta["step"] == best
        if best == len(fit.history):
            assert torch.equal(model.w_rec, fit.model.w_rec)


class TestErrors:
    @pytest.mark.parametrize(
        "kwargs, field",
        [
            ({"method": "sgd"}, "method"),
            ({"activation": "relu"}, "activation"),
            ({"inputs": "random"}, "inputs"),
            ({"tau": 5.0}, "tau"),
            ({"n_epochs": 0}, "n_epochs"),
            ({"val_trials": [40]}, "val_trials"),
            ({"train_trials": [0, 1], "val_trials": [1, 2]}, "train_trials"),
            ({"val_fraction": 1.0}, "val_fraction"),
            ({"scale": -1.0}, "scale"),
            ({"scale": "max"}, "scale"),
            ({"lr": 0.0}, "lr"),
            ({"patience": 0}, "patience"),
            ({"target": "spikes"}, "target"),
            ({"inputs": "learned", "n_basis": 61}, "n_basis"),
            ({"activation": "softplus"}, "softplus"),
        ],
    )
    def test_bad_arguments_name_the_field(self, teacher, kwargs, field):
        with pytest.raises(ValueError, match=field):
            fit_constrained(teacher, quiet=True, **kwargs)

    def test_given_inputs_need_an_input_variable(self, teacher):
        rec = make_recording(teacher.activity.values, dt=DT)
        with pytest.raises(ValueError, match="'input' variable"):
            fit_constrained(rec, inputs="given", quiet=True)
        fit = fit_constrained(rec, n_epochs=1, quiet=True)  # default: CURBD's noise input
        assert fit.config["inputs"] == "noise"

    def test_not_a_recording(self):
        with pytest.raises(ValueError, match="recording"):
            fit_constrained(np.zeros((2, 3, 4)))
