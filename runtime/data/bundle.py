"""What a data source builds: :class:`DataBundle`, and the batching helpers sources share."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

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

    def train_batches(self, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """One epoch of shuffled (and, if asked, augmented) training batches."""
        if generator is None:
            generator = torch.Generator().manual_seed(self.seed)
        return iter(self.train_factory(generator))

    def eval_batches(self) -> Iterator[Batch]:
        """The evaluation split, in order, never augmented."""
        return iter(self.eval_factory())

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
) -> DataBundle:
    """A bundle over two map-style datasets, batched by DataLoaders (shuffled by the epoch's
    generator; a trailing batch of one sample is dropped, as in :func:`index_batches`)."""
    from torch.utils.data import DataLoader, Subset

    if limit is not None:
        train_set = Subset(train_set, range(min(limit, len(train_set))))
    if eval_limit is not None:
        eval_set = Subset(eval_set, range(min(eval_limit, len(eval_set))))

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

    return DataBundle(
        name,
        in_channels,
        num_classes,
        image_size,
        len(train_set),
        len(eval_set),
        batch_size,
        augment,
        0,
        train,
        evaluate,
    )
