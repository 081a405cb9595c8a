"""Trace a model with torch.fx, turning failures into a KDR500 that names module and operation.

Every structural pass starts from an fx graph. When ``symbolic_trace`` fails (data-dependent
control flow, ``len()`` of a proxy, a non-traceable builtin...), a bare fx traceback would tell a
recipe author nothing. We walk the exception's traceback to the innermost frame whose ``self``
is a submodule of the model: that is the module whose ``forward`` could not be traced, and its
source line is the operation. Scoping that module out (``except <path>``) makes it an opaque
leaf, which is always traceable.

:func:`trace` keeps that strict behaviour for callers that need the whole graph (quantization
traces every op). :func:`trace_with_leaves` does the scoping itself: each module fx cannot
trace is retried as a leaf ("kept whole"), until the trace succeeds or the model's own
``forward`` fails (then KDR500). Channel pruning and BatchNorm folding use it, so one
untraceable block (timm's ``Conv2dSame``, a MobileViT block) no longer stops the whole model.

>>> import torch
>>> gm = trace(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()))
>>> [n.op for n in gm.graph.nodes]
['placeholder', 'call_module', 'call_module', 'output']
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import torch
from torch import fx, nn

from recipe_lang.diagnostics import KdrError, Note, error

from .scopes import matches

#: Module types understood as a whole by a channel-graph rule (attention blocks, ...): traced as
#: leaves so that their rule sees one ``call_module`` node instead of the ops inside.
LEAF_TYPES: set[type[nn.Module]] = set()


#: The same, by ``"module.QualName"`` of the type, for optional libraries kdr does not import
#: (timm's ``Conv2dSame``, whose padding arithmetic fx cannot trace).
LEAF_TYPE_NAMES: set[str] = set()


def register_leaf(*types: type[nn.Module] | str) -> None:
    """Trace modules of exactly these types (or type names) as leaves (their rule sees them
    whole)."""
    for t in types:
        (LEAF_TYPE_NAMES.add(t) if isinstance(t, str) else LEAF_TYPES.add(t))


def type_name(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def is_leaf_type(m: nn.Module) -> bool:
    return type(m) in LEAF_TYPES or type_name(type(m)) in LEAF_TYPE_NAMES


#: Plan ops whose pass traces with :func:`trace_with_leaves` (an untraceable block is kept
#: whole); the preflight fails them only when the model's own ``forward`` cannot be traced.
WHOLE_BLOCK_OPS = frozenset({"prune.channels", "prune.channels.gradual", "fuse.bn"})


class KdrTracer(fx.Tracer):
    """fx's default tracer, plus user leaves given as qualified-name globs and exact names."""

    def __init__(self, leaf_modules: Iterable[str] = (), whole: Iterable[str] = ()) -> None:
        super().__init__()
        self.leaf_globs = tuple(leaf_modules)
        self.whole = frozenset(whole)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if is_leaf_type(m) or module_qualified_name in self.whole:
            return True
        if (
            module_qualified_name
            and self.leaf_globs
            and matches(module_qualified_name, self.leaf_globs)
        ):
            return True
        return super().is_leaf_module(m, module_qualified_name)

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        """fx's node, tagged with the module whose ``forward`` created it (``""``: the root):
        channel rules read ``node.meta["kdr_module"]`` to accept a split by that module's own
        attribute (:mod:`.channels.attr_dims`)."""
        node = super().create_node(*args, **kwargs)
        node.meta["kdr_module"] = self.scope.module_path
        return node


def trace(model: nn.Module, leaf_modules: Iterable[str] = ()) -> fx.GraphModule:
    """Symbolically trace ``model``; modules matching ``leaf_modules`` globs stay opaque.

    A ``GraphModule`` is returned as is (it already is a graph). Raises ``KdrError`` KDR500.
    """
    if isinstance(model, fx.GraphModule):
        return model
    tracer = KdrTracer(leaf_modules)
    try:
        graph = tracer.trace(model)
    except KdrError:
        raise
    except Exception as exc:
        raise trace_error(model, exc) from exc
    name = type(model).__name__
    return fx.GraphModule(tracer.root, graph, name)


def trace_with_leaves(
    model: nn.Module,
    leaf_modules: Iterable[str] = (),
    whole: Iterable[str] = (),
    tracer: Callable[[tuple[str, ...], dict[str, Any]], KdrTracer] = KdrTracer,
) -> tuple[fx.GraphModule, list[dict[str, str]]]:
    """Trace ``model``, keeping whole (as leaves) the modules torch.fx cannot trace.

    ``whole``: module names already known to be kept whole (traced as leaves from the start).
    Returns the graph and one entry per module kept whole, ``{"module": path, "type": class
    name, "reason": the fx error's first line, "at": the source line}`` (``whole`` entries
    carry no reason). Raises KDR500 when the failing frame is the model's own ``forward``.
    ``tracer(globs, kept)`` makes each attempt's tracer (the channel graph passes one that
    answers shape-dependent control flow, :mod:`.concrete_trace`).

    Each retry adds the innermost failing module, so the loop ends within one trace per
    module; a module inside a block kept whole later is dropped from the list (never traced).
    """
    if isinstance(model, fx.GraphModule):
        return model, []
    globs = tuple(leaf_modules)
    kept: dict[str, dict[str, str]] = {
        name: {"module": name, "type": type(model.get_submodule(name)).__name__, "reason": ""}
        for name in whole
    }
    while True:
        attempt = tracer(globs, kept)
        try:
            graph = attempt.trace(model)
        except KdrError:
            raise
        except Exception as exc:
            path, line = _failing_module(model, exc.__traceback__)
            if not path or path in kept:
                raise trace_error(model, exc) from exc
            kept = {k: v for k, v in kept.items() if not k.startswith(path + ".")}
            kept[path] = {
                "module": path,
                "type": type(model.get_submodule(path)).__name__,
                "reason": _first_line(exc),
                "at": line,
            }
            continue
        gm = fx.GraphModule(attempt.root, graph, type(model).__name__)
        return gm, [kept[k] for k in sorted(kept)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _failing_module(model: nn.Module, tb: TracebackType | None) -> tuple[str, str]:
    """(qualified name, source line) of the innermost model module on the traceback."""
    names = {id(m): n for n, m in model.named_modules()}
    found, line = "", ""
    frames = traceback.walk_tb(tb)
    summary = traceback.extract_tb(tb)
    for (frame, _), entry in zip(frames, summary, strict=False):
        owner = frame.f_locals.get("self")
        if isinstance(owner, nn.Module) and id(owner) in names:
            found = names[id(owner)]
            line = f"`{(entry.line or '').strip()}` ({entry.filename}:{entry.lineno})"
    return found, line


def trace_error(model: nn.Module, exc: BaseException) -> KdrError:
    """KDR500 naming the module path and the operation torch.fx could not trace."""
    path, line = _failing_module(model, exc.__traceback__)
    kind = type(model.get_submodule(path)).__name__ if path else type(model).__name__
    where = f"module `{path}` ({kind})" if path else f"the top-level module ({kind})"
    op = f" at {line}" if line else ""
    help_text = (
        f"scope it out with `except {path}`: kdr then treats it as an opaque leaf and leaves "
        "its channels alone"
        if path
        else "the model's own forward is not traceable; move the untraceable part into a "
        "submodule: pruning and BatchNorm folding then keep that submodule whole"
    )
    return KdrError(
        error(
            "KDR500",
            f"torch.fx cannot trace {where}{op}: {_first_line(exc)}",
            None,
            Note(kind="help", message=help_text),
        )
    )


def example_batch(x: torch.Tensor, min_batch: int = 2) -> torch.Tensor:
    """Repeat a batch to ``min_batch`` rows: train-mode BatchNorm rejects a batch of one."""
    if x.shape[0] >= min_batch:
        return x
    reps = (min_batch + x.shape[0] - 1) // x.shape[0]
    return x.repeat(reps, *([1] * (x.dim() - 1)))[:min_batch]
