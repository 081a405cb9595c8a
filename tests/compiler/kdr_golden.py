"""Shared helpers for the compiler tests: fixture headers, compiling, rendering.

A rule fixture (``tests/fixtures/rules/NAME.kdr``) opens with comment lines:

    # title: what the case shows
    # kdr: --set NAME=VALUE        (optional, repeatable: overrides for the compile)
    # expect: KDR102 at 5:19       (a diagnostic that must be reported there; ``at`` optional)
    # absent: KDR102               (a code that must not be reported at all)

and is paired with ``NAME.expected``, the exact ``render_all`` text of its diagnostics.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from compiler.driver import CompileResult, compile_source
from recipe_lang.diagnostics import render_all

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
RULES = FIXTURES / "rules"
PLANS = FIXTURES / "plans"
RECIPES = ROOT / "recipes"
UPDATE = os.environ.get("KDR_UPDATE_GOLDEN") == "1"

_EXPECT = re.compile(r"^# expect: (KDR\d{3})(?: at (\d+):(\d+))?\s*$")
_ABSENT = re.compile(r"^# absent: (KDR\d{3})\s*$")
_SET = re.compile(r"^# kdr: --set (.+?)\s*$")


@dataclass
class Header:
    title: str = ""
    overrides: list[str] = field(default_factory=list)
    expect: list[tuple[str, int | None, int | None]] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)


def read_header(source: str) -> Header:
    h = Header()
    for line in source.splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("# title: "):
            h.title = line[len("# title: ") :].strip()
        elif m := _SET.match(line):
            h.overrides.append(m.group(1))
        elif m := _EXPECT.match(line):
            pos = (int(m.group(2)), int(m.group(3))) if m.group(2) else (None, None)
            h.expect.append((m.group(1), *pos))
        elif m := _ABSENT.match(line):
            h.absent.append(m.group(1))
    return h


def compile_fixture(path: Path) -> tuple[Header, CompileResult, str]:
    """The header, the compile result and the rendered diagnostics (with a final newline)."""
    source = path.read_text(encoding="utf-8")
    header = read_header(source)
    result = compile_source(source, path.name, header.overrides)
    text = render_all(result.diagnostics, {path.name: source})
    return header, result, (text + "\n" if text else "")


def check_golden(path: Path, text: str) -> None:
    """Compare ``text`` with the golden file ``path`` (rewrite it under KDR_UPDATE_GOLDEN=1)."""
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path.name} is missing; run with KDR_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} differs from the golden file"
