"""Pins: the built-in data yields exactly the same batches for the same seed.

The hashes were taken before ``runtime/data.py`` became a package; a refactor that changes the
order, the normalisation or the augmentation of a single sample changes them. Only elementwise
arithmetic and indexing feed them (no interpolation), so they do not depend on the CPU's SIMD.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from runtime.data import build_data


def _digest(*tensors: torch.Tensor) -> str:
    sha = hashlib.sha256()
    for t in tensors:
        sha.update(t.contiguous().numpy().tobytes())
    return sha.hexdigest()[:16]


@pytest.mark.parametrize(
    ("kwargs", "train", "evaluation"),
    [
        ({}, "2b2d798e2fc904b1", "922b1a3aad3c1c4b"),
        ({"augment": True, "batch_size": 64}, "4db46892069a90d9", "922b1a3aad3c1c4b"),
    ],
)
def test_mnist10k_first_batches_for_seed_0(
    kwargs: dict[str, object], train: str, evaluation: str
) -> None:
    data = build_data("mnist10k", [], kwargs, seed=0)
    assert _digest(*next(data.train_batches())) == train
    assert _digest(*next(data.eval_batches())) == evaluation


def test_factory_first_batch_for_seed_0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    data = build_data("kdr_test_factory:tiny_data", [], {"n": 20, "batch_size": 8}, seed=0)
    assert _digest(*next(data.train_batches())) == "5b1b075674d82f7f"
