"""Run-config presets: merging under config/flags and errors."""

import json

import pytest
from click.testing import CliRunner

from neurosim._config import ConfigError, load_run_config
from neurosim._presets import PRESETS, merge_preset, preset_config
from neurosim.cli import main


def test_presets_are_valid_run_configs():
    for name, by_ns in PRESETS.items():
        for ns, data in by_ns.items():
            cfg = load_run_config({"paradigm": f"{ns}/square", **data})
            assert cfg.model.n_hidden > 0, (name, ns)
    quick = load_run_config({"paradigm": "navigation/square", **PRESETS["quick"]["navigation"]})
    assert quick.model.tau == 20.0 and quick.model.activation == "relu"
    assert quick.paradigm_kwargs["init_input"] is True
    full = PRESETS["full"]["navigation"]
    assert full["model"]["n_hidden"] == 4096 and full["train"]["lr"] == 1e-4


def test_merge_flags_override_preset():
    base = preset_config("quick", "navigation/square")
    merged = merge_preset(base, {"model": {"n_hidden": 8}, "train": {"n_steps": 3}})
    assert merged["model"]["n_hidden"] == 8 and merged["model"]["activation"] == "relu"
    assert merged["train"]["n_steps"] == 3 and merged["train"]["batch_size"] == 200
    assert base["model"]["n_hidden"] == 256  # not modified
    assert preset_config("quick", "navigation/circle") == preset_config("quick", "navigation/x")


def test_unknown_preset_and_namespace():
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        preset_config("nope", "navigation/square")
    with pytest.raises(ConfigError, match="not defined for paradigm 'neurogym"):
        preset_config("quick", "neurogym/PerceptualDecisionMaking-v0")


def test_cli_preset_errors():
    runner = CliRunner()
    res = runner.invoke(main, ["train", "--preset", "nope", "--paradigm", "navigation/square"])
    assert res.exit_code != 0 and "unknown preset" in res.output
    res = runner.invoke(main, ["train", "--preset", "quick"])  # default paradigm: neurogym
    assert res.exit_code != 0 and "not defined for paradigm" in res.output


def test_cli_preset_trains_with_overrides(tmp_path):
    out = tmp_path / "nav"
    res = CliRunner().invoke(
        main,
        ["train", "--paradigm", "navigation/square", "--preset", "quick", "--hidden", "8",
         "--steps", "2", "--batch-size", "4", "--quiet", "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["n_hidden"] == 8 and cfg["model"]["tau"] == 20.0
    assert cfg["train"]["n_steps"] == 2 and cfg["train"]["l2_recurrent"] == 1e-4
    assert cfg["paradigm_kwargs"]["init_input"] is True
