"""Op rules for the Python ints that count channels: ``C // heads``, ``C * 2``.

``B, N, C = x.shape`` makes ``C`` a :class:`~.walker.Sym` (``x``'s atoms); fx records the
int arithmetic on it as ``operator.floordiv`` / ``operator.mul`` nodes, whose results stay
symbols as long as the fraction is exact: ``C // 3`` only when 3 divides ``C`` (after pruning
the reshape that uses it ties the counts so that it still does). Anything else done with a
symbol (``C + 1``, ``C ** -0.5``, ``C // H`` by a spatial size) is not a symbol: the walker
sees the symbol escape there and blocks its channels.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from torch import fx

from .op_rules import Info, function_rule
from .walker import GraphWalker, Sym


def _positive_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x > 0


def _scaled(w: GraphWalker, node: fx.Node, n: fx.Node, num: int, den: int) -> None:
    """Record ``node`` as the symbol ``n`` times ``num / den`` when that stays a whole count
    (``n`` is then claimed: the new symbol carries it on)."""
    s = w.syms[n]
    num, den = s.num * num, s.den * den
    if (len(s.atoms) * num) % den:
        return  # an inexact division: pruning could change how it rounds
    g = math.gcd(num, den)
    w.syms[node] = Sym(s.src, s.atoms, num // g, den // g)
    w.handled.add(n)


def sym_arith(w: GraphWalker, node: fx.Node, a: Any, b: Any) -> Info | None:
    """``C * k`` / ``k * C`` (for :func:`.rules_tensor.binary`): a symbol by a positive int."""
    if node.target in (operator.mul, operator.imul):
        if w.sym(a) is not None and _positive_int(b):
            _scaled(w, node, a, b, 1)
        elif w.sym(b) is not None and _positive_int(a):
            _scaled(w, node, b, a, 1)
    return None


@function_rule(operator.floordiv)
def floordiv(w: GraphWalker, node: fx.Node) -> Info | None:
    """``C // k``: a symbol over a positive int; ints and untracked tensors are nothing."""
    args: Any = node.args
    if w.sym(args[0]) is not None and _positive_int(args[1]):
        _scaled(w, node, args[0], 1, args[1])
        return None
    if w.get(args[0]) is not None or w.get(args[1]) is not None:
        return w.unknown(node)
    return None


__all__ = ["floordiv", "sym_arith"]
