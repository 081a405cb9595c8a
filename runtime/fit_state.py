"""What a training run is between two steps: the batch stream's position, the loop's state,
and the hook a stage may run inside the loop.

:class:`BatchStream` draws training batches epoch after epoch from one seeded generator and
knows where it is (the generator state when the current epoch's order was drawn, and how many
of its batches are drawn), so a run stopped between two steps resumes on exactly the batch it
would have drawn next. :class:`LoopState` is that position plus the optimizer, schedule, RNG and
loss history, as plain data a checkpoint holds (``runtime/checkpoint.py``). :class:`FitHook` is
how a stage acts inside :func:`runtime.engine.fit` (a gradual prune, ``runtime/gradual/``).

>>> def stream_of(g, position=None):
...     return BatchStream(lambda: iter(torch.randperm(6, generator=g).split(2)), g, position)
>>> stream = stream_of(torch.Generator().manual_seed(0))
>>> _ = stream.next()
>>> where = stream.position
>>> rest = [stream.next() for _ in range(4)]
>>> again = stream_of(torch.Generator(), where)
>>> all(torch.equal(a, b) for a, b in zip(rest, [again.next() for _ in range(4)]))
True
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Protocol

import torch
from torch import nn

from recipe_lang.diagnostics import KdrError, error

#: What a hook did to the model before a step: nothing, new zeros, or new (smaller) tensors.
Change = Literal["", "weights", "structure"]


class BatchStream:
    """Training batches, epoch after epoch, from ``make()`` (which draws on ``generator``)."""

    def __init__(
        self,
        make: Callable[[], Iterator[Any]],
        generator: torch.Generator,
        position: tuple[torch.Tensor, int] | None = None,
        name: str = "the data",
    ):
        self.make, self.generator, self.name = make, generator, name
        if position is not None:
            generator.set_state(position[0])
        self._epoch()
        for _ in range(position[1] if position is not None else 0):
            self.next()

    def _epoch(self) -> None:
        self.start = self.generator.get_state()
        self.drawn = 0
        self.it = self.make()

    @property
    def position(self) -> tuple[torch.Tensor, int]:
        """Where the next batch comes from: the epoch's generator state, batches drawn."""
        return self.start.clone(), self.drawn

    def next(self) -> Any:
        for _ in range(2):
            try:
                batch = next(self.it)
            except StopIteration:
                if self.drawn == 0:
                    raise KdrError(
                        error("KDR207", f"dataset `{self.name}` has no training batches")
                    ) from None
                self._epoch()
                continue
            self.drawn += 1
            return batch
        raise AssertionError("unreachable")


@dataclass
class LoopState:
    """A training loop between two steps, as plain data."""

    step: int
    samples: int
    #: BatchStream.position.
    epoch_generator: torch.Tensor
    epoch_drawn: int
    #: torch's global RNG (dropout, mixup, augmentation) before the next batch is drawn.
    rng: torch.Tensor
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    losses: torch.Tensor
    #: The validation curve so far and the ``keep best`` choice with its weights
    #: (:meth:`runtime.validation.EpochValidation.state_dict`); None without a validation split.
    validation: dict[str, Any] | None = None
    #: ``FitStats.lr_curve`` so far.
    lr_curve: list[tuple[int, float]] = field(default_factory=list)
    #: The weights' moving average (``AveragedModel.state_dict()``) when the training keeps one.
    ema: dict[str, Any] | None = None

    def to_plain(self) -> dict[str, Any]:
        # deepcopy, not dataclasses.asdict: asdict rebuilds a dict subclass from its items, and
        # the Counter of MultiStepLR's milestones came back counting (milestone, 1) pairs
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)}

    @staticmethod
    def from_plain(data: dict[str, Any]) -> LoopState:
        return LoopState(**data)


class FitHook(Protocol):
    """A stage's work inside the training loop (see :func:`runtime.engine.fit`)."""

    def before_step(
        self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer
    ) -> Change: ...

    def after_backward(self, step: int, model: nn.Module) -> None: ...

    def checkpoint(self, state: LoopState) -> None: ...


__all__ = ["BatchStream", "Change", "FitHook", "LoopState"]
