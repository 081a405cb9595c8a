"""Seeding and RNG state capture, so that CPU runs are reproducible and resumable.

:func:`seed_everything` seeds Python, NumPy and torch (CPU and CUDA). :func:`capture_rng_state`
returns every generator's state as tensors, ints and lists only, so a checkpoint holding it
loads with ``torch.load(weights_only=True)``; :func:`restore_rng_state` puts it back, so a run
resumed from that checkpoint draws the same random numbers as one that never stopped.

>>> seed_everything(0); a = torch.rand(2)
>>> state = capture_rng_state(); b = torch.rand(2)
>>> restore_rng_state(state); bool(torch.equal(torch.rand(2), b))
True
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all CUDA devices too)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def capture_rng_state() -> dict[str, Any]:
    """Every global generator's state, as ``weights_only``-loadable tensors and numbers."""
    version, py_state, gauss = random.getstate()
    kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {
            "version": int(version),
            "state": torch.tensor(py_state, dtype=torch.int64),
            "gauss": gauss,
        },
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators from :func:`capture_rng_state`'s result."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state(
        (
            npst["kind"],
            npst["keys"].numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def generator_state(generator: torch.Generator) -> torch.Tensor:
    """The state of a dedicated generator (e.g. data shuffling), for a checkpoint."""
    return generator.get_state()
