"""``set KEY = VALUE`` run settings: their defaults, and the checks on what a recipe sets."""

from __future__ import annotations

from typing import Any

from compiler.values import Values, unknown
from compiler.zoo import OPTIMIZERS, PRECISIONS, SCHEDULES
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

#: Keyword arguments each optimizer accepts, with their checks (low, high, low_open, high_open).
_OPTIMIZER_ARGS: dict[str, dict[str, tuple[float | None, float | None, bool, bool]]] = {
    "sgd": {
        "lr": (0, None, True, False),
        "momentum": (0, 1, False, True),
        "weight_decay": (0, None, False, False),
        "nesterov": (None, None, False, False),
    },
    "adamw": {
        "lr": (0, None, True, False),
        "weight_decay": (0, None, False, False),
        "beta1": (0, 1, False, True),
        "beta2": (0, 1, False, True),
    },
}
_DEFAULT_LR = {"sgd": 0.05, "adamw": 0.005}
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
        return _optimizer(resolved, v, values)
    return _schedule(resolved, v, values)


def _device(resolved: ast.Value, v: ast.Value, values: Values) -> tuple[str, Any] | None:
    word = resolved.value if isinstance(resolved, (ast.Name, ast.String)) else None
    if word is None or not (
        word in ("auto", "cpu", "cuda") or (word.startswith("cuda:") and word[5:].isdigit())
    ):
        values.report(error("KDR103", '`device` must be `auto`, `cpu`, `cuda` or "cuda:N"', v.span))
        return None
    return ("device", word)


def _call_or_name(resolved: ast.Value) -> tuple[str | None, list[ast.KeywordArg], ast.Call | None]:
    if isinstance(resolved, ast.Call):
        return resolved.callee, resolved.kwargs, resolved
    if isinstance(resolved, (ast.Name, ast.String)):
        return resolved.value, [], None
    return None, [], None


def _optimizer(resolved: ast.Value, v: ast.Value, values: Values) -> tuple[str, Any] | None:
    name, kwargs, call = _call_or_name(resolved)
    if name is None:
        values.report(error("KDR104", "`optimizer` must be a call like `sgd(lr=0.05)`", v.span))
        return None
    if name not in OPTIMIZERS:
        values.report(unknown("KDR100", "optimizer", name, v.span, OPTIMIZERS))
        return None
    if call is not None and call.args:
        values.report(
            error("KDR104", "optimizer arguments must be named, like `lr=0.05`", call.args[0].span)
        )
        return None
    out: dict[str, Any] = {"name": name, "lr": _DEFAULT_LR[name]}
    allowed = _OPTIMIZER_ARGS[name]
    for k in kwargs:
        if k.name not in allowed:
            values.report(unknown("KDR103", f"`{name}` argument", k.name, k.span, allowed))
            continue
        low, high, low_open, high_open = allowed[k.name]
        if k.name == "nesterov":
            out[k.name] = bool(values.literal(k.value))
            continue
        x = values.number(
            k.value, f"`{k.name}`", low=low, high=high, low_open=low_open, high_open=high_open
        )
        if x is not None:
            out[k.name] = x
    return ("optimizer", out)


def _schedule(resolved: ast.Value, v: ast.Value, values: Values) -> tuple[str, Any] | None:
    name, kwargs, _ = _call_or_name(resolved)
    if name is None or name not in SCHEDULES:
        values.report(unknown("KDR100", "schedule", name or "?", v.span, SCHEDULES))
        return None
    out: dict[str, Any] = {"name": name}
    if name == "step":
        out.update(step_size=1, gamma=0.1)
        for k in kwargs:
            if k.name == "step_size":
                n = values.count(k.value, "`step_size`")
                if n is not None:
                    out["step_size"] = n
            elif k.name == "gamma":
                g = values.number(k.value, "`gamma`", low=0, high=1, low_open=True)
                if g is not None:
                    out["gamma"] = g
            else:
                values.report(
                    unknown("KDR103", "`step` argument", k.name, k.span, ["step_size", "gamma"])
                )
    elif kwargs:
        values.report(error("KDR103", f"schedule `{name}` takes no arguments", kwargs[0].span))
    return ("schedule", out)


def settings_diagnostic_free(diags: list[Diagnostic]) -> bool:
    return not any(d.is_error for d in diags)
