"""`neurosim grid-analysis` end to end on a tiny navigation model."""

import json
import math

import xarray as xr
from click.testing import CliRunner

from neurosim.cli import main


def _strict(value):
    raise ValueError(f"non-finite {value} in summary.json")


def test_grid_analysis_end_to_end(tmp_path):
    runner = CliRunner()
    out = tmp_path / "nav"
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        'paradigm = "navigation/square"\n'
        "[paradigm_kwargs]\nn_place_cells = 16\nn_hd_cells = 4\nn_steps = 10\ninit_input = true\n"
        '[model]\nn_hidden = 12\nactivation = "relu"\ntau = 20.0\nsigma_rec = 0.0\n'
        "[train]\nn_steps = 3\nbatch_size = 8\neval_every = 3\neval_trials = 16\n"
    )
    res = runner.invoke(main, ["train", "--config", str(cfg), "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    ana = out / "analysis"
    res = runner.invoke(
        main,
        ["grid-analysis", "--checkpoint", str(out / "checkpoint"), "--out", str(ana),
         "--trials", "40", "--steps", "15", "--shuffles", "5"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "decoding error" in res.output
    for name in ("summary.json", "grid_scores.nc", "rate_maps_top.png", "decoding.png", "pca.png"):
        assert (ana / name).is_file(), name
    s = json.loads((ana / "summary.json").read_text(), parse_constant=_strict)
    for key in ("decoding_error_cm", "shuffle_threshold", "fraction_grid", "lyapunov"):
        assert key in s
    assert s["heldout_steps_decoding"] == 10 and s["heldout_steps_rate_maps"] == 15
    assert math.isfinite(s["decoding_error_cm"]["mean"]) and s["decoding_error_cm"]["mean"] > 0
    assert 0 <= s["fraction_grid"] <= s["fraction_score60_above_0.3"] <= 1
    assert len(s["lyapunov"]["exponents_mean"]) == 10
    for key in ("shuffle_threshold", "fraction_grid", "performance", "pca_participation_ratio"):
        assert math.isfinite(s[key]), key
    # a 3-step net may have dead units: their exponents are -inf, written as null
    assert all(v is None or math.isfinite(v) for v in s["lyapunov"]["exponents_mean"])
    with xr.open_dataset(ana / "grid_scores.nc", engine="h5netcdf") as ds:
        assert ds.sizes["unit"] == 12 and "score60" in ds and "rate_map" in ds
        assert math.isfinite(ds.attrs["shuffle_threshold"])


def test_grid_analysis_rejects_other_paradigms(tmp_path):
    runner = CliRunner()
    out = tmp_path / "pdm"
    res = runner.invoke(
        main, ["train", "--hidden", "4", "--steps", "1", "--quiet", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        main,
        ["grid-analysis", "--checkpoint", str(out / "checkpoint"), "--out", str(tmp_path / "a")],
    )
    assert res.exit_code != 0 and "navigation" in res.output
