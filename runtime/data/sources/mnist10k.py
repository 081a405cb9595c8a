"""``mnist10k``: 10,000 MNIST digits shipped with kdr (``runtime/assets/mnist10k.npz``).

Its split is fixed: the **first 8,000 images are the training split, the last 2,000 the
evaluation split**. It lives in memory as normalised float tensors and is batched by slicing
with a seeded :class:`torch.Generator` permutation, with no DataLoader overhead.

``val=N`` carves a validation split of N images out of the training split (after ``limit``),
drawn with the data seed (:mod:`runtime.data.split`); training keeps the rest, the evaluation
split is untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from runtime.data.augment import MNIST_MEAN, MNIST_STD, random_crop_flip
from runtime.data.bundle import Batch, DataBundle, index_batches
from runtime.data.registry import register_source
from runtime.data.split import carve

ASSET = Path(__file__).resolve().parents[2] / "assets" / "mnist10k.npz"


@register_source("mnist10k", seeded=True)
def mnist10k(
    *,
    seed: int,
    batch_size: int = 128,
    image_size: int = 28,
    augment: bool = False,
    workers: int = 0,
    limit: int | None = None,
    eval_limit: int | None = None,
    val: int | None = None,
) -> DataBundle:
    """The packaged digits (``workers`` is accepted and unused: there is no DataLoader)."""
    with np.load(ASSET) as npz:
        images = torch.from_numpy(npz["images"].astype(np.float32) / 255.0)
        labels = torch.from_numpy(npz["labels"].astype(np.int64))
    images = ((images - MNIST_MEAN) / MNIST_STD).unsqueeze(1)
    if image_size != 28:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear")
    x_train, y_train = images[:8000], labels[:8000]
    x_eval, y_eval = images[8000:], labels[8000:]
    if limit is not None:
        x_train, y_train = x_train[:limit].contiguous(), y_train[:limit].contiguous()
    if eval_limit is not None:
        x_eval, y_eval = x_eval[:eval_limit].contiguous(), y_eval[:eval_limit].contiguous()
    x_val, y_val = x_train[:0], y_train[:0]
    if val is not None:
        kept, held = carve("mnist10k", len(x_train), val, seed)
        x_val, y_val = x_train[held], y_train[held]
        x_train, y_train = x_train[kept], y_train[kept]
    # Digits are not mirror-symmetric: never flip them. Padding is the background value.
    background = -MNIST_MEAN / MNIST_STD

    def train(generator: torch.Generator) -> Iterator[Batch]:
        for idx in index_batches(len(x_train), batch_size, generator):
            x = x_train[idx]
            if augment:
                x = random_crop_flip(x - background, generator) + background
            yield x, y_train[idx]

    def evaluate() -> Iterator[Batch]:
        for start in range(0, len(x_eval), 512):
            yield x_eval[start : start + 512], y_eval[start : start + 512]

    def validate() -> Iterator[Batch]:
        for start in range(0, len(x_val), 512):
            yield x_val[start : start + 512], y_val[start : start + 512]

    return DataBundle(
        "mnist10k",
        1,
        10,
        image_size,
        len(x_train),
        len(x_eval),
        batch_size,
        augment,
        seed,
        train,
        evaluate,
        (x_train, y_train),
        val_size=len(x_val),
        val_factory=validate if len(x_val) else None,
    )
