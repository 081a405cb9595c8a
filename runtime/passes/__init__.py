"""Graph passes on torch.fx, registered by plan op (see :mod:`runtime.passes.base`).

Importing this package registers every pass: ``prune.channels``, ``prune.heads``, ``prune.weights``,
``replace.depthwise_separable``, ``replace.ghost``, ``replace.group``, ``fuse.bn``,
``quant.prepare``, ``quant.calibrate``, ``quant.prepare_qat``, ``quant.convert``.
"""

from runtime.passes import channels, fuse, heads, prune_weights, quant, replace  # noqa: F401
from runtime.passes.base import (
    PASSES,
    PassContext,
    PassResult,
    register_pass,
    replay_pass,
    run_pass,
)

__all__ = ["PASSES", "PassContext", "PassResult", "register_pass", "replay_pass", "run_pass"]
