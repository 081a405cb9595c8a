"""What a data source builds: :class:`DataBundle`, and the batching helpers sources share.

A bundle has up to three splits: training (shuffled, maybe augmented), evaluation (what
``evaluate`` and the report measure) and, when the recipe says ``val=``, validation (what
``keep best`` chooses by; see :mod:`runtime.data.split`). Validation batches are never
augmented and come in order.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from runtime.data.errors import data_error

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class DataBundle:
    """A dataset ready for training: batch iterators and the facts models are built from."""

    name: str
    in_channels: int
    num_classes: int
    image_size: int
    train_size: int
    eval_size: int
    batch_size: int
    augment: bool = False
    #: Seeds the default shuffling generator of :meth:`train_batches`.
    seed: int = 0
    #: ``train_factory(generator)`` yields shuffled training batches for one epoch.
    train_factory: Callable[[torch.Generator], Iterable[Batch]] = field(repr=False, default=None)  # type: ignore[assignment]
    eval_factory: Callable[[], Iterable[Batch]] = field(repr=False, default=None)  # type: ignore[assignment]
    #: In-memory training tensors (``mnist10k``): lets the engine cache teacher logits.
    train_tensors: Batch | None = field(repr=False, default=None)
    #: Examples in the validation split (0: the data has none).
    val_size: int = 0
    #: ``val_factory()`` yields the validation split in order, never augmented.
    val_factory: Callable[[], Iterable[Batch]] | None = field(repr=False, default=None)

    def train_batches(self, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """One epoch of shuffled (and, if asked, augmented) training batches."""
        if generator is None:
            generator = torch.Generator().manual_seed(self.seed)
        return iter(self.train_factory(generator))

    def eval_batches(self) -> Iterator[Batch]:
        """The evaluation split, in order, never augmented."""
        return iter(self.eval_factory())

    @property
    def has_val(self) -> bool:
        """Whether the recipe carved (or named) a validation split."""
        return self.val_factory is not None and self.val_size > 0

    def val_batches(self) -> Iterator[Batch]:
        """The validation split, in order, never augmented."""
        if self.val_factory is None or not self.val_size:
            raise data_error(
                f"dataset `{self.name}` has no validation split",
                f"carve one: `{self.name}(val=1000)`",
            )
        return iter(self.val_factory())

    @property
    def steps_per_epoch(self) -> int:
        full, rest = divmod(self.train_size, self.batch_size)
        return full + (1 if rest > 1 else 0)

    def example_batch(self, n: int = 8) -> torch.Tensor:
        """``n`` evaluation images (N, C, H, W), for tracing and shape checks."""
        images: list[torch.Tensor] = []
        for x, _ in self.eval_batches():
            images.append(x)
            if sum(len(t) for t in images) >= n:
                break
        return torch.cat(images)[:n]


def index_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Shuffled index batches over ``n`` samples; a trailing batch of one sample is dropped
    (BatchNorm cannot train on it)."""
    perm = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        idx = perm[start : start + batch_size]
        if len(idx) > 1 or n == 1:
            yield idx


def loader_bundle(
    name: str,
    train_set: Any,
    eval_set: Any,
    *,
    in_channels: int,
    num_classes: int,
    image_size: int,
    batch_size: int,
    augment: bool,
    workers: int,
    limit: int | None,
    eval_limit: int | None,
    val: int | None = None,
    val_view: Any = None,
    val_set: Any = None,
    seed: int = 0,
) -> DataBundle:
    """A bundle over two map-style datasets, batched by DataLoaders (shuffled by the epoch's
    generator; a trailing batch of one sample is dropped, as in :func:`index_batches`).

    ``val=N`` carves N examples out of the (limited) training set, seeded by ``seed``
    (:func:`runtime.data.split.carve`), and reads them from ``val_view``: the training set
    with the evaluation transform (default: the training set itself). ``val_set`` is a
    validation set of its own instead (``imagefolder(val="folder")``).
    """
    from torch.utils.data import DataLoader, Subset

    from runtime.data.split import carve

    if limit is not None:
        keep = range(min(limit, len(train_set)))
        train_set = Subset(train_set, keep)
        val_view = Subset(val_view, keep) if val_view is not None else None
    if eval_limit is not None:
        eval_set = Subset(eval_set, range(min(eval_limit, len(eval_set))))
    if val is not None:
        kept, held = carve(name, len(train_set), val, seed)
        val_set = Subset(train_set if val_view is None else val_view, held.tolist())
        train_set = Subset(train_set, kept.tolist())

    def train(generator: torch.Generator) -> Iterable[Batch]:
        return DataLoader(
            train_set,
            batch_size=batch_size,
            shuffle=True,
            generator=generator,
            num_workers=workers,
            drop_last=len(train_set) % batch_size == 1,
        )

    def evaluate() -> Iterable[Batch]:
        return DataLoader(eval_set, batch_size=256, num_workers=workers)

    def validate() -> Iterable[Batch]:
        return DataLoader(val_set, batch_size=256, num_workers=workers)

    return DataBundle(
        name,
        in_channels,
        num_classes,
        image_size,
        len(train_set),
        len(eval_set),
        batch_size,
        augment,
        seed,
        train,
        evaluate,
        val_size=len(val_set) if val_set is not None else 0,
        val_factory=validate if val_set is not None else None,
    )


def eval_view(dataset: Any, transform: Any) -> Any:
    """``dataset`` read through ``transform`` (a shallow copy: the samples are shared), so
    validation examples carved from a training set are never augmented."""
    view = copy.copy(dataset)
    view.transform = transform
    if getattr(view, "transforms", None) is not None:  # torchvision's VisionDataset pairs them
        from torchvision.datasets.vision import StandardTransform

        view.transforms = StandardTransform(transform, getattr(view, "target_transform", None))
    return view
