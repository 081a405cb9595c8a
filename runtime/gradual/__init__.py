"""Gradual pruning: a sparsity ramp inside one training run (``prune ... gradually over N``).

:class:`~runtime.gradual.hook.GradualPrune` is the :class:`~runtime.fit_state.FitHook` the
``prune.weights.gradual`` and ``prune.channels.gradual`` ops train with: at every update point of
the plan's :class:`~compiler.ops.Schedule` it cuts the model to that point's level, weights
(:mod:`.weights`: zeros that the engine then keeps) or channels (:mod:`.channels`: smaller
tensors, with the optimizer's state sliced to follow them).
"""

from runtime.gradual.hook import GradualPrune

__all__ = ["GradualPrune"]
