"""Every python block in docs/*.md runs (a page's blocks in order, in a scratch folder)."""

import re
from pathlib import Path

import pytest

DOCS = sorted((Path(__file__).parent.parent / "docs").glob("*.md"))


def _blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


@pytest.mark.parametrize("page", [p for p in DOCS if _blocks(p)], ids=lambda p: p.stem)
def test_doc_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in _blocks(page):
        exec(compile(block, str(page), "exec"), namespace)


def test_every_part_has_a_page_with_examples():
    pages = {p.stem for p in DOCS if _blocks(p)}
    assert pages >= {
        "paradigms",
        "models_and_training",
        "trajectories",
        "dynamics",
        "perturbations",
        "navigation",
        "bandits",
        "spiking",
        "fitting",
        "objects",
    }
