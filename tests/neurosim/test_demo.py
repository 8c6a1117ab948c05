"""The demo (the README's main job) end to end, at its real size."""

import json

from neurosim import load
from neurosim._demo import run_demo


def test_demo_reaches_accuracy_and_writes_everything(tmp_path):
    summary = run_demo(tmp_path, quiet=True)
    assert summary["heldout_trials"] == 500
    assert summary["heldout_accuracy"] >= 0.85  # ideal observer ≈ 0.90
    # evidence: accuracy grows with coherence; 0 % coherence is at chance
    by_coh = summary["accuracy_by_coherence"]
    assert by_coh["51.2"] > 0.95 and abs(by_coh["0"] - 0.5) < 0.15
    for name in ("learning_curve", "psychometric", "pca"):
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 10_000
    ds = load(tmp_path / "trajectories.nc")
    assert ds.sizes["trial"] == 500
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
