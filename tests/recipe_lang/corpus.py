"""The recipe corpora the front-end tests share: identity cases, messy cases, example recipes.

``tests/fixtures/identity/*.txt`` hold recipes separated by lines reading ``%%``; each one is
canonical, so ``format_recipe(parse(x)) == x`` exactly. ``messy.txt`` holds pairs
``input ==> canonical``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IDENTITY = ROOT / "tests" / "fixtures" / "identity"
RECIPES = ROOT / "recipes"
SEPARATOR = "\n%%\n"


def _split(path: Path) -> list[str]:
    return [case.strip("\n") + "\n" for case in path.read_text(encoding="utf-8").split(SEPARATOR)]


def identity_cases() -> list[tuple[str, str]]:
    """(id, source) for every canonical recipe of the identity corpus."""
    out = []
    for path in sorted(IDENTITY.glob("*.txt")):
        if path.stem == "messy":
            continue
        out += [(f"{path.stem}-{i}", text) for i, text in enumerate(_split(path))]
    return out


def messy_cases() -> list[tuple[str, str, str]]:
    """(id, messy source, its canonical form)."""
    out = []
    for i, case in enumerate(_split(IDENTITY / "messy.txt")):
        messy, canonical = case.split("\n==>\n")
        out.append((f"messy-{i}", messy + "\n", canonical.strip("\n") + "\n"))
    return out


def example_recipes() -> list[Path]:
    return sorted(RECIPES.glob("*.kdr"))
