"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


def write_zoo_weights(torch_home: Path, name: str) -> None:
    """A stand-in for torchvision's pretrained ``name`` weights in a torch hub cache: fresh
    weights in the zoo's own shapes (1000 classes), where torchvision looks before it would
    download. Nothing is fetched."""
    import torch
    from torchvision import models

    url = models.get_model_weights(name).DEFAULT.url  # type: ignore[attr-defined]
    target = torch_home / "hub" / "checkpoints" / url.rsplit("/", 1)[-1]
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(models.get_model(name).state_dict(), target)


@pytest.fixture
def zoo_weights(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], None]:
    """``zoo_weights("resnet50")``: stand-in pretrained weights, with ``TORCH_HOME`` set to
    their cache for the test."""
    torch_home = tmp_path_factory.getbasetemp() / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    return lambda name: write_zoo_weights(torch_home, name)
