"""The graph-pass contract: a pass is ``(module, params, ctx) -> PassResult``.

Passes are registered by their plan op (``prune.channels``, ``fuse.bn``, ``quant.convert``...),
which must be a graph op of :data:`compiler.ops.OPS`; each receives the op's typed params model
(``PruneChannelsParams``...), the same class the compiler builds, and reads its attributes.
:func:`run_pass` wraps every pass with its invariants: the graph lints, the output shape is
unchanged, and a pass that must preserve function (``preserves_function=True``) gives outputs
allclose to the input model's on the context's example batch. A failing invariant names the
pass and the passes that ran before it.

Each pass also returns a JSON-able ``record`` (for example the channel indices it kept) from
which :func:`replay_pass` rebuilds the transformed *structure* on a fresh model without data;
checkpoints store records instead of pickled code, then load the weights into the replayed
structure. This mirrors ``torch/fx/passes/infra`` but is kdr's own small, stable contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from pydantic import ValidationError
from torch import nn

from compiler.ops import OPS, OpParams
from recipe_lang.diagnostics import KdrError, Note, error
from runtime.models.outputs import logits_of


@dataclass
class PassContext:
    """What a pass may need beyond its parameters."""

    #: A representative input batch (N, C, H, W) on the module's device: shape and allclose checks.
    example_inputs: torch.Tensor
    #: Labelled batches for data-driven passes (calibration, taylor importance).
    batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]] | None = None
    #: Passes already run on this model, by op, for error messages.
    history: list[str] = field(default_factory=list)
    #: Free-form per-run options (e.g. the quantization engine chosen for the machine).
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PassResult:
    module: nn.Module
    modified: bool
    #: JSON-able data from which :func:`replay_pass` rebuilds the structure without data.
    record: dict[str, Any] = field(default_factory=dict)
    #: Measurements worth reporting (sparsity, channels removed, layers replaced...).
    info: dict[str, Any] = field(default_factory=dict)


class PassFn(Protocol):
    """A pass: ``params`` is the op's params model (``OPS[op].params``), already validated."""

    def __call__(self, module: nn.Module, params: Any, ctx: PassContext) -> PassResult: ...


ReplayFn = Callable[[nn.Module, dict[str, Any]], nn.Module]


@dataclass(frozen=True)
class RegisteredPass:
    op: str
    fn: PassFn
    replay: ReplayFn | None
    preserves_function: bool
    #: Relative and absolute tolerance of the equivalence check (loose for int8).
    rtol: float = 1e-4
    atol: float = 1e-4


PASSES: dict[str, RegisteredPass] = {}


def register_pass(
    op: str,
    *,
    replay: ReplayFn | None = None,
    preserves_function: bool = False,
    rtol: float = 1e-4,
    atol: float = 1e-4,
) -> Callable[[PassFn], PassFn]:
    """Register ``fn`` as the implementation of plan op ``op``, a graph op of ``OPS``."""
    info = OPS.get(op)
    if info is None or not info.graph:
        raise ValueError(f"`{op}` is not a graph op of compiler.ops.OPS; add it there first")

    def decorate(fn: PassFn) -> PassFn:
        PASSES[op] = RegisteredPass(op, fn, replay, preserves_function, rtol, atol)
        return fn

    return decorate


def _invariant_error(op: str, ctx: PassContext, what: str) -> KdrError:
    before = ", ".join(ctx.history) or "none"
    return KdrError(
        error(
            "KDR999",
            f"graph pass `{op}` broke an invariant: {what}",
            None,
            Note(message=f"passes run before it on this model: {before}"),
            Note(kind="help", message="this is a bug in kdr; please report it with the recipe"),
        )
    )


@torch.no_grad()
def _outputs(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    was_training = module.training
    module.eval()
    try:
        out = module(x)
    finally:
        module.train(was_training)
    return logits_of(out)


def typed_params(op: str, params: OpParams | dict[str, Any]) -> OpParams:
    """``params`` as ``op``'s params model. A dict that does not fit is a bug (KDR999): the
    compiler builds these models, so a user's mistake never gets this far."""
    model = OPS[op].params
    if isinstance(params, model):
        return params
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "params"
        raise KdrError(
            error(
                "KDR999",
                f"graph pass `{op}` got params that do not fit `{model.__name__}`: "
                f"{where}: {first['msg']}",
                None,
                Note(kind="help", message="this is a bug in kdr; please report it with the recipe"),
            )
        ) from exc


def run_pass(
    op: str, module: nn.Module, params: OpParams | dict[str, Any], ctx: PassContext
) -> PassResult:
    """Run the pass registered for ``op`` with typed ``params`` and check its invariants."""
    if op not in PASSES:
        raise KdrError(error("KDR999", f"no graph pass is registered for op `{op}`"))
    entry = PASSES[op]
    typed = typed_params(op, params)
    before = _outputs(module, ctx.example_inputs)
    result = entry.fn(module, typed, ctx)
    graph = getattr(result.module, "graph", None)
    if isinstance(graph, torch.fx.Graph):
        try:
            graph.lint()
        except Exception as exc:  # lint raises plain RuntimeErrors
            raise _invariant_error(op, ctx, f"graph lint failed: {exc}") from exc
    after = _outputs(result.module, ctx.example_inputs)
    if after.shape != before.shape:
        raise _invariant_error(
            op, ctx, f"output shape changed from {tuple(before.shape)} to {tuple(after.shape)}"
        )
    if entry.preserves_function and not torch.allclose(
        after.float(), before.float(), rtol=entry.rtol, atol=entry.atol
    ):
        diff = (after.float() - before.float()).abs().max().item()
        raise _invariant_error(op, ctx, f"outputs changed (max abs diff {diff:.3g})")
    ctx.history.append(op)
    return result


def replay_pass(op: str, module: nn.Module, record: dict[str, Any]) -> nn.Module:
    """Rebuild the structure ``op`` produced, from its record, on a freshly built module."""
    entry = PASSES.get(op)
    if entry is None or entry.replay is None:
        return module
    return entry.replay(module, record)
