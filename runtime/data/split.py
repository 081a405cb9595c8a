"""The validation split: ``val=N`` carves N training examples out, seeded by the data seed.

Every source takes ``val``: a count carves that many examples, drawn with a generator seeded
from the data seed, out of the training split (after ``limit``); the training split shrinks by
N and the evaluation split is untouched. Both index lists come back sorted, so the validation
batches run in the dataset's order. ``imagefolder`` may instead name a folder of its own
(:mod:`runtime.data.sources.imagefolder`).

>>> train, val = carve("mnist10k", 10, 3, seed=0)
>>> len(train), len(val), sorted(set(train.tolist()) | set(val.tolist())) == list(range(10))
(7, 3, True)
>>> torch.equal(val, carve("mnist10k", 10, 3, seed=0)[1])
True
"""

from __future__ import annotations

from typing import Any

import torch

from runtime.data.errors import data_error

#: Decorrelates the split from the shuffling generators, which the same seed also seeds.
SPLIT_SALT = 0x7A15EED


def check_val(name: str, val: Any, *, folder: bool = False) -> None:
    """Refuse a ``val=`` that is neither a positive count nor (where ``folder``) a folder name."""
    if val is None:
        return
    if isinstance(val, str) and folder:
        return
    if isinstance(val, int) and not isinstance(val, bool) and val >= 1:
        return
    what = "a positive number of examples or a folder" if folder else "a positive number"
    raise data_error(
        f"`{name}`: `val` must be {what} of validation examples, got {val!r}",
        f"e.g. `{name}(val=1000)` carves 1000 training examples out as the validation split"
        + (', or `val="heldout"` names a folder of class folders' if folder else ""),
    )


def carve(name: str, n_train: int, val: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, val)`` sorted indices: ``val`` of ``n_train`` examples held out, seeded."""
    if val >= n_train:
        raise data_error(
            f"`{name}`: `val={val}` leaves no training data: the training split has "
            f"{n_train} example{'s' * (n_train != 1)}",
            f"give `val` fewer than {n_train} examples (raise `limit` if you set it)",
        )
    generator = torch.Generator().manual_seed(seed + SPLIT_SALT)
    perm = torch.randperm(n_train, generator=generator)
    return perm[val:].sort().values, perm[:val].sort().values


__all__ = ["SPLIT_SALT", "carve", "check_val"]
