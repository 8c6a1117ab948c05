"""Training: learning, seeding, checkpoints, resume, divergence and config errors."""

import pytest
import torch

import neurosim
import paradigms
from neurosim import ConfigError, TrainingDivergedError
from neurosim.models import RateRNN

PDM = "neurogym/PerceptualDecisionMaking-v0"


def _setup(seed=0, hidden=32):
    task = paradigms.make(PDM)
    torch.manual_seed(seed)
    return RateRNN(task.n_inputs, hidden, task.n_outputs, dt=task.dt, tau=200.0), task


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_short_training_beats_chance_by_a_margin():
    net, task = _setup()
    before = neurosim.evaluate(net, task, task.batch(400, rng=5))
    result = neurosim.train(net, task, n_steps=80, eval_every=40, eval_trials=400, quiet=True)
    after = neurosim.evaluate(net, task, task.batch(400, rng=5))
    # two choices → chance 0.5; fixation-only output scores 0
    assert before < 0.6
    assert after > 0.75, after
    assert result.history["loss"].iloc[-10:].mean() < result.history["loss"].iloc[:10].mean()


def test_same_seed_same_weights():
    runs = []
    for _ in range(2):
        net, task = _setup()
        neurosim.train(net, task, n_steps=6, eval_every=3, eval_trials=20, quiet=True)
        runs.append(_weights(net))
    for k in runs[0]:
        torch.testing.assert_close(runs[0][k], runs[1][k], rtol=0, atol=0)


def test_resume_continues_exactly(tmp_path):
    net, task = _setup()
    full = neurosim.train(net, task, n_steps=12, eval_every=4, eval_trials=20, quiet=True)
    straight = _weights(net)

    net2, _ = _setup()
    cfg = {
        "n_steps": 8,
        "eval_every": 4,
        "eval_trials": 20,
        "quiet": True,
        "checkpoint_dir": str(tmp_path),
    }
    neurosim.train(net2, task, cfg)
    net3, _ = _setup(seed=123)  # different init: the checkpoint must overwrite it
    resumed = neurosim.train(net3, task, {**cfg, "n_steps": 12, "resume": True})
    for k, v in straight.items():
        torch.testing.assert_close(net3.state_dict()[k], v, rtol=0, atol=0)
    assert list(resumed.history["step"]) == list(range(1, 13))
    assert resumed.history["loss"].tolist() == pytest.approx(
        full.history["loss"].tolist(), rel=0, abs=0
    )


def test_checkpoint_round_trip_weights_only(tmp_path):
    net, task = _setup()
    result = neurosim.train(
        net, task, n_steps=4, eval_every=2, eval_trials=20, quiet=True, checkpoint_dir=str(tmp_path)
    )
    model, meta = neurosim.load_checkpoint(result.checkpoint)
    assert meta["paradigm"]["id"] == PDM and meta["step"] == 4
    for k, v in net.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v.cpu())
    assert sorted(p.name for p in result.checkpoint.iterdir()) == [
        "meta.json",
        "model.safetensors",
        "state.pt",
    ]


def test_divergence_stops_with_message_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    net, task = _setup()
    cfg = {
        "n_steps": 20,
        "eval_every": 5,
        "eval_trials": 20,
        "quiet": True,
        "checkpoint_dir": str(tmp_path),
    }
    original = RateRNN.readout
    calls = {"n": 0}

    def poisoned(self, state):
        calls["n"] += 1
        y = original(self, state)
        return y * float("nan") if self.training and calls["n"] > 7 else y

    monkeypatch.setattr(RateRNN, "readout", poisoned)
    with pytest.raises(
        TrainingDivergedError, match=r"loss became nan at step \d+.*last good checkpoint"
    ):
        neurosim.train(net, task, cfg)
    monkeypatch.setattr(RateRNN, "readout", original)
    model, meta = neurosim.load_checkpoint(tmp_path)
    assert meta["step"] == 5
    for k, v in net.state_dict().items():  # restored to the last good weights
        assert torch.isfinite(v).all()
        torch.testing.assert_close(model.state_dict()[k], v)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"lr": -1.0}, r"train.lr must be > 0"),
        (
            {"loss": "hinge"},
            r"train.loss = 'hinge' is not allowed; choose one of \['auto', 'cross_entropy', 'soft_cross_entropy', 'mse'\]",
        ),
        ({"bogus": 1}, r"unknown field\(s\) \['bogus'\]"),
        ({"n_steps": 2.5}, r"train.n_steps must be an integer"),
        ({"resume": True}, r"needs train.checkpoint_dir"),
    ],
)
def test_bad_config_names_field_and_allowed_values(overrides, match):
    net, task = _setup()
    with pytest.raises(ConfigError, match=match):
        neurosim.train(net, task, **overrides)


def test_size_mismatch_is_explained():
    task = paradigms.make(PDM)
    with pytest.raises(ValueError, match="do not match"):
        neurosim.train(RateRNN(5, 8, 3, dt=task.dt, tau=200.0), task, n_steps=1)


def test_run_config_from_toml(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text('paradigm = "neurogym/GoNogo-v0"\n[model]\nn_hidden = 16\n[train]\nn_steps = 3\n')
    cfg = neurosim.load_run_config(p)
    assert (
        cfg.paradigm == "neurogym/GoNogo-v0" and cfg.model.n_hidden == 16 and cfg.train.n_steps == 3
    )
    p.write_text('[model]\nactivation = "gelu"\n')
    with pytest.raises(
        ConfigError, match=r"model.activation = 'gelu' is not allowed; choose one of"
    ):
        neurosim.load_run_config(p)


def test_overrides_merge_before_validation(tmp_path):
    net, task = _setup()
    result = neurosim.train(
        net,
        task,
        {"resume": True, "n_steps": 2, "eval_trials": 10, "quiet": True},
        checkpoint_dir=str(tmp_path),
    )
    assert result.steps == 2


def test_soft_cross_entropy_is_minimal_at_the_target_distribution():
    from neurosim import masked_loss

    torch.manual_seed(0)
    p = torch.softmax(torch.randn(2, 3, 5), -1)
    q = torch.softmax(torch.randn(2, 3, 2), -1)
    target = torch.cat([p, q], -1)
    logits = torch.log(target).requires_grad_(True)
    mask = torch.ones(2, 3)
    loss = masked_loss(logits, target, mask, "soft_cross_entropy", groups=[5, 2])
    entropy = -(p * p.log()).sum(-1).mean() - (q * q.log()).sum(-1).mean()
    assert float(loss.detach()) == pytest.approx(float(entropy), rel=1e-6)
    (grad,) = torch.autograd.grad(loss, logits)
    assert float(grad.abs().max()) < 1e-6  # softmax(log p) = p: a stationary point
    with pytest.raises(ValueError, match="do not add up"):
        masked_loss(logits, target, mask, "soft_cross_entropy", groups=[5, 3])


def test_l2_recurrent_adds_lambda_times_the_squared_norm():
    def first_loss(lam):
        net, task = _setup()
        w0 = float(net.w_rec.detach().pow(2).sum())
        res = neurosim.train(
            net, task, n_steps=1, eval_every=1, eval_trials=10, l2_recurrent=lam, quiet=True
        )
        return float(res.history["loss"].iloc[0]), w0

    plain, w0 = first_loss(0.0)
    penalised, _ = first_loss(0.5)
    assert penalised - plain == pytest.approx(0.5 * w0, rel=1e-5)


def test_loss_must_suit_the_targets():
    net, task = _setup()
    with pytest.raises(ConfigError, match="soft_cross_entropy.*does not suit"):
        neurosim.train(net, task, n_steps=1, loss="soft_cross_entropy", quiet=True)
