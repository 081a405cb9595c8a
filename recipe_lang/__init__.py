"""kdr's recipe language: grammar, parser, AST, printer and diagnostics. Never imports torch."""

from recipe_lang.ast import Recipe
from recipe_lang.diagnostics import Diagnostic, KdrError, Span
from recipe_lang.parser import parse, parse_file, parse_recipe
from recipe_lang.printer import format_recipe

__all__ = [
    "Diagnostic",
    "KdrError",
    "Recipe",
    "Span",
    "format_recipe",
    "parse",
    "parse_file",
    "parse_recipe",
]
