"""Datasets for kdr recipes: the built-in ``mnist10k``, torchvision sets, folders, factories.

:func:`build_data` turns a recipe's ``data = CALL`` into a :class:`DataBundle`. Options shared
by every dataset: ``batch_size`` (128), ``image_size``, ``augment`` (false: random crop with
padding 4, plus a horizontal flip for natural images but never for digits), ``workers`` (0),
``limit`` (use only the first N training images, for quick runs), ``eval_limit`` and ``val``
(a validation split for ``keep best``: ``val=N`` carves N of the training images out, drawn
with the data seed, after ``limit``; ``imagefolder(val="folder")`` names a folder instead;
see :mod:`~runtime.data.split`). The evaluation split is never used for validation.

``mnist10k`` ships with kdr (``runtime/assets/mnist10k.npz``, 10,000 MNIST digits; the first
8,000 are the training split, the last 2,000 the evaluation split) and is batched in memory.
Other sets (``cifar10``, ``cifar100``, ``mnist``, ``imagefolder``, ``"pkg.mod:fn"``) use
torchvision datasets and a DataLoader; torchvision sets never download unless the recipe says
``download=true``.

Layout: :mod:`~runtime.data.bundle` (the bundle, batching), :mod:`~runtime.data.augment`,
:mod:`~runtime.data.registry` (name -> builder, names from ``compiler.zoo.DATASETS``),
:mod:`~runtime.data.split` (the validation split),
:mod:`~runtime.data.sources` (one module per source), :mod:`~runtime.data.build`.
"""

from runtime.data.augment import random_crop_flip
from runtime.data.build import build_data
from runtime.data.bundle import Batch, DataBundle, index_batches
from runtime.data.registry import COMMON_OPTIONS, SOURCES, data_names, register_source

__all__ = [
    "COMMON_OPTIONS",
    "SOURCES",
    "Batch",
    "DataBundle",
    "build_data",
    "data_names",
    "index_batches",
    "random_crop_flip",
    "register_source",
]
