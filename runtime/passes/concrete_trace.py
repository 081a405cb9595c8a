"""A tracer that answers shape-dependent Python control flow with the example's concrete values.

torch.fx stops at ``if H == ws:``, ``math.ceil(H / p)`` then ``range(n)``, or
``torch.autocast(device_type=x.device.type)``: a :class:`~torch.fx.Proxy` has no value. Channel
analysis only needs the graph the *example input* runs through (the pruned model keeps running
its own Python code, never this graph), so :class:`ConcreteTracer` evaluates, on demand, the
nodes a Python-level question depends on, and answers it from the real values:

- ``bool(p)`` (``if``/``and``/``max``), ``int(p)``, ``float(p)``, ``len(p)``, ``range(p)`` and
  iteration are answered from the value; the graph keeps a :func:`concrete` node reading the
  proxy, so every shape read the answer came from still has a user and the channel walker still
  blocks a channel count read there (a ``C`` baked into a later reshape would otherwise go
  unseen).
- ``x.device`` / ``x.dtype`` (and the other :data:`META_ATTRS`) return the real attribute: they
  carry no channel information.
- A question about tensor *values* (``if x.sum() > 0``) is refused with a ``TraceError``: the
  pruned model may branch the other way at run time, so the module stays kept whole.

Values are computed lazily (a model without such control flow evaluates nothing) and in
``no_grad``; buffers a train-mode BatchNorm updates meanwhile are restored after the trace.

Only the channel-graph build uses it: passes that output a ``GraphModule`` (BatchNorm folding,
quantization) must keep the strict trace, whose graph is valid for every input.

>>> import torch
>>> from torch import nn
>>> class Pad(nn.Module):
...     def forward(self, x):
...         return x if x.shape[-1] % 2 == 0 else nn.functional.pad(x, (0, 1))
>>> tracer = ConcreteTracer(torch.zeros(1, 2, 3))
>>> g = tracer.trace(Pad())
>>> [n.target.__name__ for n in g.nodes if n.op == "call_function"]
['getattr', 'getitem', 'mod', 'eq', 'concrete', 'pad']
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import fx, nn
from torch.fx.proxy import Attribute, Proxy, TraceError

from .trace import KdrTracer

#: Tensor attributes answered with their real value: they never carry a channel count.
META_ATTRS = frozenset(
    {"device", "dtype", "is_cuda", "is_meta", "is_sparse", "is_quantized", "layout"}
)

#: Nodes that read a tensor's shape, not its values: a question may depend on them.
_SHAPE_METHODS = frozenset({"size", "dim", "ndimension", "numel"})
_SHAPE_ATTRS = frozenset({"shape", "ndim"})


def concrete(value: Any) -> Any:
    """Identity: marks in the graph a value the trace turned into a Python constant, so the
    shape reads it came from keep a user (the channel walker blocks a channel count read)."""
    return value


class _Concrete:
    """The Python protocols fx's Proxy lacks, answered from the tracer's concrete values."""

    def __getattr__(self: Any, k: str) -> Any:
        if k in META_ATTRS:
            return getattr(self.tracer.value_of(self), k)
        return ConcreteAttribute(self, k)

    def __len__(self: Any) -> int:
        return int(self.tracer.answer(self, len))

    def __int__(self: Any) -> int:
        return int(self.tracer.answer(self, int))

    def __index__(self: Any) -> int:
        return int(self.tracer.answer(self, operator.index))

    def __float__(self: Any) -> float:
        return float(self.tracer.answer(self, float))


class ConcreteProxy(_Concrete, Proxy):
    """A Proxy whose Python-level questions the :class:`ConcreteTracer` answers."""


class ConcreteAttribute(_Concrete, Attribute):
    """``proxy.attr`` (a node made on first use), with the same concrete answers."""


class ConcreteTracer(KdrTracer):
    """:class:`~.trace.KdrTracer` answering shape-dependent control flow from ``example``
    (see the module docstring)."""

    def __init__(
        self, example: torch.Tensor, leaf_modules: Iterable[str] = (), whole: Iterable[str] = ()
    ) -> None:
        super().__init__(leaf_modules, whole)
        self.example = example
        self.values: dict[fx.Node, Any] = {}
        self.evaluating = False
        self.saved: dict[str, torch.Tensor] | None = None
        self.asked: set[str] = set()  # modules whose forward asked a question
        self.called: set[str] = set()  # modules the trace called
        self.leaves: set[str] = set()  # those of them traced as leaves

    # -- tracing -----------------------------------------------------------------------------
    def trace(self, root: Any, concrete_args: Any = None) -> fx.Graph:
        self.values, self.saved = {}, None
        self.asked, self.called, self.leaves = set(), set(), set()
        state = _attribute_state(root) if isinstance(root, nn.Module) else []
        try:
            graph = super().trace(root, concrete_args)
            _check_branches_seen(root, graph, self.asked, self.called, self.leaves)
            return graph
        finally:
            self._restore_buffers()
            _restore_attributes(state)

    def proxy(self, node: fx.Node) -> Proxy:
        return ConcreteProxy(node, self)

    def to_bool(self, obj: Proxy) -> bool:
        return bool(self.answer(obj, bool))

    def iter(self, obj: Proxy) -> Iterator[Any]:
        n = self.answer(obj, len)
        return iter([obj[i] for i in range(n)])  # type: ignore[index]

    def keys(self, obj: Proxy) -> Any:
        return list(self.answer(obj, lambda v: list(v.keys())))

    def call_module(
        self,
        m: nn.Module,
        forward: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        if self.evaluating:  # a leaf run on real values: fx's patched __call__ must not trace
            return forward(*args, **kwargs)
        path = self.path_of_module(m)
        self.called.add(path)
        if self.is_leaf_module(m, path):
            self.leaves.add(path)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        if self.evaluating:  # real parameters, not get_attr proxies
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    # -- concrete values ---------------------------------------------------------------------
    def answer(self, obj: Proxy, how: Callable[[Any], Any]) -> Any:
        """``how(value of obj)``, leaving a :func:`concrete` node that reads ``obj``.

        Raises ``TraceError`` when the value depends on tensor values, not only on shapes."""
        value = self.value_of(obj)
        self._check_shape_only(obj.node)
        result = how(value)
        self.asked.add(self.scope.module_path)
        self.create_proxy("call_function", concrete, (obj,), {})
        return result

    def value_of(self, obj: Proxy) -> Any:
        """The value ``obj`` takes on the example input (its ancestors evaluated once).

        A failure is re-raised from here as a ``TraceError``: its traceback then ends in the
        module whose control flow asked, which the caller keeps whole, rather than in a layer
        run on real values."""
        todo = [n for n in _ancestors(obj.node) if n not in self.values]
        order = {n: i for i, n in enumerate(obj.node.graph.nodes)}
        for n in sorted(todo, key=order.__getitem__):
            try:
                self.values[n] = self._evaluate(n)
            except Exception as exc:
                why = f"{type(exc).__name__}: {exc}".splitlines()[0]
                raise TraceError(f"cannot run `{n.name}` on the example ({why})") from None
        return self.values[obj.node]

    def _evaluate(self, n: fx.Node) -> Any:
        if n.op == "placeholder":  # the example feeds the first input; the others, defaults
            first = next(iter(n.graph.nodes))
            return self.example if n is first else (n.args[0] if n.args else None)
        if self.saved is None:  # train-mode BatchNorm updates its running stats: keep them
            self.saved = {k: b.detach().clone() for k, b in self.root.named_buffers()}
        args = fx.node.map_arg(n.args, self.values.__getitem__)
        kwargs = fx.node.map_arg(n.kwargs, self.values.__getitem__)
        self.evaluating = True  # fx's patched Module.__call__/__getattr__ must not trace now
        try:
            with torch.no_grad():
                return _run(self.root, n, args, kwargs)
        finally:
            self.evaluating = False

    def _check_shape_only(self, node: fx.Node) -> None:
        """A Python answer may depend on shapes and constants only, never on tensor values:
        the pruned model, fed other data, could branch the other way."""
        stack, seen = [node], {node}
        while stack:
            n = stack.pop()
            if _reads_shape(n):
                continue
            if isinstance(self.values[n], torch.Tensor):
                raise TraceError(
                    f"control flow depends on the values of `{n.name}`, not only on shapes"
                )
            fresh = [i for i in n.all_input_nodes if i not in seen]
            seen.update(fresh)
            stack.extend(fresh)

    def _restore_buffers(self) -> None:
        if self.saved is not None:
            with torch.no_grad():
                for k, b in self.root.named_buffers():
                    b.copy_(self.saved[k])


def _check_branches_seen(
    root: nn.Module, graph: fx.Graph, asked: set[str], called: set[str], leaves: set[str]
) -> None:
    """A module that answered a question must have run all its layers in this trace.

    A layer it left out (``if H > 7: self.a(x) else: self.b(x)``) may run at another input size;
    never in the graph, it would keep channels its pruned input no longer has. That block is
    kept whole instead (the error is raised from a frame whose ``self`` is the block, which is
    how :func:`.trace.trace_with_leaves` finds the module to keep whole)."""
    used = called | {str(n.target).rsplit(".", 1)[0] for n in graph.nodes if n.op == "get_attr"}
    for scope in sorted(asked):
        for name, m in root.get_submodule(scope).named_modules(prefix=scope):
            has_own = any(True for _ in m.parameters(recurse=False))
            inside_used = any(name.startswith(leaf + ".") for leaf in leaves)
            if has_own and name not in used and not inside_used:
                _refuse(root.get_submodule(scope), name)


def _refuse(self: nn.Module, name: str) -> None:  # `self`: the frame trace_with_leaves reads
    raise TraceError(f"`{name}` does not run at the example's shapes (another branch may)")


def _attribute_state(root: nn.Module) -> list[tuple[nn.Module, dict[str, Any], dict[int, Any]]]:
    """Each module's plain attributes, and a copy of those that are dicts or lists.

    A forward may store a traced value in its module (timm's ``attention_bias_cache[str(x.device)]``
    in eval mode). With the device now a real one, a later eager forward (or the next trace
    attempt) would read that proxy back: the trace's side effects are undone afterwards."""
    state = []
    for m in root.modules():
        attrs = dict(m.__dict__)
        copies = {id(v): copy.copy(v) for v in attrs.values() if isinstance(v, (dict, list))}
        state.append((m, attrs, copies))
    return state


def _restore_attributes(state: list[tuple[nn.Module, dict[str, Any], dict[int, Any]]]) -> None:
    """Put back what :func:`_attribute_state` saw; new attributes stay (fx stores its tensor
    constants on the root) unless they hold a proxy."""
    for m, attrs, copies in state:
        for k in [k for k, v in m.__dict__.items() if k not in attrs and isinstance(v, Proxy)]:
            del m.__dict__[k]
        for k, v in attrs.items():
            m.__dict__[k] = v
            if id(v) in copies:
                v.clear()
                v.extend(copies[id(v)]) if isinstance(v, list) else v.update(copies[id(v)])


def _run(root: nn.Module, n: fx.Node, args: Any, kwargs: Any) -> Any:
    if n.op == "get_attr":
        return operator.attrgetter(str(n.target))(root)
    if n.op == "call_module":
        return root.get_submodule(str(n.target))(*args, **kwargs)
    if n.op == "call_method":
        self_obj, *rest = args
        return getattr(self_obj, str(n.target))(*rest, **kwargs)
    assert callable(n.target)
    return n.target(*args, **kwargs)


def _reads_shape(n: fx.Node) -> bool:
    if n.op == "call_method":
        return n.target in _SHAPE_METHODS
    return n.op == "call_function" and n.target is getattr and n.args[1] in _SHAPE_ATTRS


def _ancestors(node: fx.Node) -> list[fx.Node]:
    stack, seen = [node], {node}
    while stack:
        for inp in stack.pop().all_input_nodes:
            if inp not in seen:
                seen.add(inp)
                stack.append(inp)
    return list(seen)


__all__ = ["META_ATTRS", "ConcreteProxy", "ConcreteTracer", "concrete"]
