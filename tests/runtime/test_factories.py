"""A factory module next to the recipe imports with no PYTHONPATH (docs/factories.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdr.cli import main

FACTORY = """
from torch import nn

def tiny_net(width: int = 4, *, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes),
    )
"""


def test_a_factory_next_to_the_recipe_is_importable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    recipes = tmp_path / "project"
    recipes.mkdir()
    (recipes / "kdr_doc_factory_mod.py").write_text(FACTORY, encoding="utf-8")
    (recipes / "r.kdr").write_text(
        "data = mnist10k(batch_size=16, limit=64, eval_limit=64)\n"
        'model student = "kdr_doc_factory_mod:tiny_net"(width=6)\n'
        "train student for 1 step\nthen prune student 50% channels with lr 0.01 for 1 step\n",
        encoding="utf-8",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", ".")])
    assert main(["check", "--models", "--json", str(recipes / "r.kdr")]) == 0
    assert [d for d in json.loads(capsys.readouterr().out) if d["severity"] == "error"] == []
