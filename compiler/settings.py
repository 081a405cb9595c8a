"""``set KEY = VALUE`` run settings: their defaults, and the checks on what a recipe sets."""

from __future__ import annotations

from typing import Any

from compiler.optim_values import optimizer_spec, schedule_spec
from compiler.values import Values, unknown
from compiler.zoo import PRECISIONS
from recipe_lang import ast
from recipe_lang.diagnostics import Diagnostic, error

#: Defaults of every setting; the plan always carries all of them, filled in.
DEFAULT_SETTINGS: dict[str, Any] = {
    "seed": 0,
    "device": "auto",
    "optimizer": {"name": "adamw", "lr": 0.005, "weight_decay": 0.0005},
    "schedule": {"name": "onecycle"},
    "precision": "fp32",
    "run_dir": None,
    "workers": 0,
    "compile": False,
    #: Epochs of the finetune planned for a pretrained zoo teacher before it first teaches
    #: (its classifier is re-initialised for the data's classes); 0 plans none.
    "teacher_finetune": 1,
}

_BOOLS = {"true": True, "false": False, "on": True, "off": False}


def check_setting(decl: ast.SetDecl, values: Values) -> tuple[str, Any] | None:
    """The checked (key, value) of one ``set``, or None after reporting a diagnostic."""
    key, v = decl.key.value, decl.value
    resolved, _ = values.resolve(v)
    if resolved is None:
        return None
    if key not in DEFAULT_SETTINGS:
        values.report(unknown("KDR100", "setting", key, decl.key.span, DEFAULT_SETTINGS))
        return None
    if key == "seed":
        seed = values.count(v, "`seed`", minimum=0)
        return None if seed is None else (key, seed)
    if key in ("workers", "teacher_finetune"):
        count = values.count(v, f"`{key}`", minimum=0)
        return None if count is None else (key, count)
    if key == "precision":
        precision = values.name(v, "precision", PRECISIONS)
        return None if precision is None else (key, precision)
    if key == "run_dir":
        if not isinstance(resolved, ast.String):
            values.report(error("KDR104", "`run_dir` must be a string path", v.span))
            return None
        return (key, resolved.value)
    if key == "compile":
        word = resolved.value.lower() if isinstance(resolved, (ast.Name, ast.String)) else None
        if word not in _BOOLS:
            values.report(error("KDR104", "`compile` must be `true` or `false`", v.span))
            return None
        return (key, _BOOLS[word])
    if key == "device":
        return _device(resolved, v, values)
    if key == "optimizer":
        optimizer = optimizer_spec(v, values)
        return None if optimizer is None else (key, optimizer)
    schedule = schedule_spec(v, values, warmup_args=True)
    return None if schedule is None else (key, schedule)


def _device(resolved: ast.Value, v: ast.Value, values: Values) -> tuple[str, Any] | None:
    word = resolved.value if isinstance(resolved, (ast.Name, ast.String)) else None
    if word is None or not (
        word in ("auto", "cpu", "cuda") or (word.startswith("cuda:") and word[5:].isdigit())
    ):
        values.report(error("KDR103", '`device` must be `auto`, `cpu`, `cuda` or "cuda:N"', v.span))
        return None
    return ("device", word)


def settings_diagnostic_free(diags: list[Diagnostic]) -> bool:
    return not any(d.is_error for d in diags)
