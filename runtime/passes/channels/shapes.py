"""Shape recording: run the traced graph once and remember every node's tensor shape.

The op rules decide from shapes (which dim holds the channels, whether a reshape merges them),
so a model that rejects the example batch cannot be analysed: KDR500, with the node it got to.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from recipe_lang.diagnostics import KdrError, Note, error


def record_shapes(gm: fx.GraphModule, x: torch.Tensor) -> dict[fx.Node, torch.Size | None]:
    """Run ``gm`` once, remembering every node's tensor shape (None for non-tensors)."""
    shapes: dict[fx.Node, torch.Size | None] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            result = super().run_node(n)
            shapes[n] = result.shape if isinstance(result, torch.Tensor) else None
            return result

    # Train-mode BatchNorm updates running stats: snapshot and restore the buffers.
    saved = {name: b.clone() for name, b in gm.named_buffers()}
    try:
        with torch.no_grad():
            Recorder(gm).run(x)
    except Exception as exc:  # the model rejects the example batch in this mode
        mode = "training" if gm.training else "eval"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KdrError(
            error(
                "KDR500",
                f"cannot analyse the model's graph in {mode} mode: running the example batch "
                f"{tuple(x.shape)} failed after node `{list(shapes)[-1].name if shapes else '?'}`"
                f": {reason}",
                None,
                Note(
                    kind="help",
                    message="use example inputs the model accepts in both modes (auxiliary "
                    "heads often need larger images), or scope the failing module out",
                ),
            )
        ) from exc
    finally:
        with torch.no_grad():
            for name, b in gm.named_buffers():
                b.copy_(saved[name])
    return shapes


__all__ = ["record_shapes"]
