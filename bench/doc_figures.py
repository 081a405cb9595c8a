"""Figures quoted in the docs, checked against the benchmark results and the code.

    python bench/doc_figures.py          # report every drifted figure (exit 1 if any)
    python bench/doc_figures.py --fix    # rewrite the quoted values from the sources

**Markers.** A figure quoted in ``README.md`` or ``docs/*.md`` carries an HTML comment (invisible
once rendered) right before its value::

    <!-- fig:quant:resnet18_static_per_channel.speedup_b32:.2f -->2.76x
    <!-- fig:orthogonality:rows.plain.kd_gain*100:+.2f -->+1.35 points
    <!-- const:MAX_STEPS:, -->20,000 stages

- ``fig:FILE:EXPR:FORMAT``: ``FILE`` is ``bench/results/FILE.json``. ``EXPR`` is a path into
  it (``a.b.c``; ``a["key with spaces"]``; ``rows[0]``; on a list, ``rows.plain`` is the
  element whose ``name`` is ``plain``), or arithmetic over such paths and numbers
  (``(rows.plain.acc_kd - rows.ptq.acc_kd)*100``, ``len(seeds)``). ``FORMAT`` is a Python format
  spec (``.2f``, ``+.1f``, ``,``, ``.0f``).
- ``const:EXPR:FORMAT``: the same, where names are constants of the compiler (looked up in
  ``CONST_MODULES``, in order).

The value is the number right after the comment (a leading ``−``, U+2212, reads as ``-``); it
must equal ``format(value, FORMAT)``.

**Figure regions.** Between ``<!-- figures -->`` and ``<!-- /figures -->``, every number that
looks like a measurement must carry a marker. "Looks like a measurement" is a deliberately
simple heuristic: a number with a decimal point (``1.35``), a number followed by ``%``, ``x`` or
``×`` (``97%``, ``3×``), or one with thousands separators (``1,702``), not glued to a word
(``resnet18``, ``b32`` are names). Fenced code, inline code and HTML comments are skipped: write a
setting that is not a measurement as code (`` `lr 0.002` ``) or in words.

**Recipe blocks.** A fenced block whose first line is ``# NAME.kdr: ...`` quotes
``recipes/NAME.kdr`` and must equal it.
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._results import RESULTS_DIR  # noqa: E402

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: where ``const:`` names are looked up, first hit wins (the compiler's constants are moving
#: out of ``compiler.stages``).
CONST_MODULES = (
    "compiler.vocab",
    "compiler.lower.unroll",
    "compiler.lower",
    "compiler.stages",
    "compiler.settings",
)

MARKER = re.compile(r"<!--\s*(?P<kind>fig|const):(?P<body>.*?)\s*-->")
VALUE = re.compile(r"[+\-−]?\d+(?:,\d{3})*(?:\.\d+)?")
REGION = re.compile(r"<!--\s*figures\s*-->(?P<body>.*?)<!--\s*/figures\s*-->", re.S)
NUMBER = re.compile(r"(?<![\w.,])(?P<num>\d+(?:,\d{3})*(?:\.\d+)?)(?P<unit>%|×|x(?!\w))?(?!\w)")
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
COMMENT = re.compile(r"<!--.*?-->", re.S)
LINK_TARGET = re.compile(r"\]\([^)\n]*\)")
RECIPE_BLOCK = re.compile(r"^```[^\n]*\n(# (?P<name>[\w-]+\.kdr):[^\n]*\n.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class Figure:
    path: Path
    line: int
    marker: str  # the comment's body, "fig:FILE:EXPR:FMT" or "const:EXPR:FMT"
    start: int  # offset of the quoted value (right after the comment)
    quoted: str  # the number found there, "" if none
    expected: str | None  # None when the marker could not be evaluated
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.expected is not None and _norm(self.quoted) == self.expected

    def describe(self) -> str:
        where = f"{_rel(self.path)}:{self.line}"
        if self.expected is None:
            return f"{where}: <!-- {self.marker} -->: {self.error}"
        quoted, expected = self.quoted, self.expected
        return f"{where}: <!-- {self.marker} --> quotes {quoted!r}, source says {expected!r}"


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _norm(text: str) -> str:
    return text.replace("−", "-")


def _lookup(container: Any, key: str | int) -> Any:
    if isinstance(container, dict):
        if key in container:
            return container[key]
        if str(key) in container:
            return container[str(key)]
        raise KeyError(f"no key {key!r} (keys: {', '.join(map(str, container))})")
    if isinstance(container, list):
        if isinstance(key, int):
            return container[key]
        for item in container:
            if isinstance(item, dict) and item.get("name") == key:
                return item
        raise KeyError(f"no element named {key!r}")
    raise KeyError(f"cannot look up {key!r} in a {type(container).__name__}")


_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def evaluate(expr: str, root: Callable[[str], Any]) -> Any:
    """Evaluate a marker expression; ``root(name)`` gives the value of a bare name."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str):
            return node.value
        if isinstance(node, ast.Name):
            return root(node.id)
        if isinstance(node, ast.Attribute):
            return _lookup(ev(node.value), node.attr)
        if isinstance(node, ast.Subscript):
            key = ev(node.slice)
            return _lookup(ev(node.value), key)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = ev(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "len"
            and len(node.args) == 1
        ):
            return len(ev(node.args[0]))
        raise ValueError(f"unsupported expression: {ast.unparse(node)}")

    return ev(ast.parse(expr.strip(), mode="eval"))


@functools.cache
def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _results_root(stem: str) -> Callable[[str], Any]:
    data = _load(RESULTS_DIR / f"{stem}.json")
    return lambda name: _lookup(data, name)


def _const_root(name: str) -> Any:
    for module_name in CONST_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if hasattr(module, name):
            return getattr(module, name)
    raise KeyError(f"no constant {name} in {', '.join(CONST_MODULES)}")


def expected_value(kind: str, body: str) -> str:
    """The formatted value a marker's source gives (raises on a bad marker)."""
    head, sep, fmt = body.rpartition(":")
    if not sep:
        raise ValueError("expected KIND:...:FORMAT")
    if kind == "fig":
        stem, sep, expr = head.partition(":")
        if not sep:
            raise ValueError("expected fig:FILE:EXPR:FORMAT")
        value = evaluate(expr, _results_root(stem))
    else:
        value = evaluate(head, _const_root)
    return format(value, fmt)


def figures(path: Path, text: str | None = None) -> Iterator[Figure]:
    """Every marker of a markdown file, with the value it quotes and the one it should."""
    text = path.read_text(encoding="utf-8") if text is None else text
    for m in MARKER.finditer(text):
        value = VALUE.match(text, m.end())
        quoted = value.group() if value else ""
        line = text.count("\n", 0, m.start()) + 1
        marker = f"{m['kind']}:{m['body']}"
        try:
            expected: str | None = expected_value(m["kind"], m["body"])
            error = ""
        except (KeyError, ValueError, IndexError, TypeError, OSError, SyntaxError) as exc:
            expected, error = None, f"{type(exc).__name__}: {exc}"
        yield Figure(path, line, marker, m.end(), quoted, expected, error)


def _figure_like(m: re.Match[str]) -> bool:
    return bool(m["unit"]) or "." in m["num"] or "," in m["num"]


def _mask(pattern: re.Pattern[str], text: str) -> str:
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)


def unmarked(path: Path, text: str | None = None) -> list[str]:
    """Figure-like numbers inside ``<!-- figures -->`` regions that carry no marker."""
    text = path.read_text(encoding="utf-8") if text is None else text
    marked = [(f.start, f.start + len(f.quoted)) for f in figures(path, text) if f.quoted]
    masked = text
    for pattern in (FENCE, COMMENT, INLINE_CODE, LINK_TARGET):
        masked = _mask(pattern, masked)
    problems = []
    for region in REGION.finditer(text):
        for m in NUMBER.finditer(masked, region.start("body"), region.end("body")):
            if not _figure_like(m):
                continue
            if not any(a <= m.start() < b for a, b in marked):
                line = text.count("\n", 0, m.start()) + 1
                problems.append(
                    f"{_rel(path)}:{line}: {m.group()!r} in a figures region "
                    "has no <!-- fig:... --> marker"
                )
    return problems


def recipe_blocks(path: Path, text: str | None = None) -> list[str]:
    """Fenced blocks that quote ``recipes/NAME.kdr`` (first line ``# NAME.kdr: ...``) but
    differ from it."""
    text = path.read_text(encoding="utf-8") if text is None else text
    problems = []
    for m in RECIPE_BLOCK.finditer(text):
        recipe = ROOT / "recipes" / m["name"]
        if not recipe.is_file():
            continue
        if m.group(1) != recipe.read_text(encoding="utf-8"):
            line = text.count("\n", 0, m.start()) + 1
            problems.append(f"{_rel(path)}:{line}: this block differs from recipes/{m['name']}")
    return problems


def fix(path: Path) -> int:
    """Rewrite every drifted value from its source (a ``−`` stays a ``−``); returns how many."""
    text = path.read_text(encoding="utf-8")
    out, last, changed = [], 0, 0
    for f in figures(path, text):
        if f.expected is None or f.ok:
            continue
        new = f.expected
        if f.quoted.startswith("−") or (not f.quoted and new.startswith("-")):
            new = "−" + new[1:] if new.startswith("-") else new
        out += [text[last : f.start], new]
        last = f.start + len(f.quoted)
        changed += 1
    if changed:
        path.write_text("".join([*out, text[last:]]), encoding="utf-8")
    return changed


def problems(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        found += [f.describe() for f in figures(path) if not f.ok]
        found += unmarked(path) + recipe_blocks(path)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="default: README.md docs/*.md")
    parser.add_argument("--fix", action="store_true", help="rewrite drifted values in place")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.files] or DOCS
    if args.fix:
        for path in paths:
            if n := fix(path):
                print(f"{_rel(path)}: {n} value(s) rewritten")
    found = problems(paths)
    print("\n".join(found) if found else "every quoted figure matches its source")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
