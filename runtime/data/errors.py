"""The data layer's diagnostic: KDR504, data that cannot be built as the recipe says."""

from __future__ import annotations

from recipe_lang.diagnostics import KdrError, Note, error


def data_error(message: str, help_text: str) -> KdrError:
    """A KDR504 diagnostic with a help line saying what to do."""
    return KdrError(error("KDR504", message, None, Note(kind="help", message=help_text)))
