"""Declarations: params (with ``--set`` overrides), settings, data and models.

Reports KDR100 (unknown constructor), KDR101 (duplicates), KDR105 (bad overrides) and KDR206
(bad ensembles); the stages are lowered afterwards by :mod:`compiler.lower`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from compiler.program import ModelSpec
from compiler.settings import DEFAULT_SETTINGS, check_setting
from compiler.values import Values, did_you_mean, unknown
from compiler.zoo import BUILTIN_MODELS, DATASETS, ZOO, is_model_constructor
from recipe_lang import ast
from recipe_lang.diagnostics import Diagnostic, Note, Span, error
from recipe_lang.parser import parse_value


@dataclass
class Declarations:
    name: str
    params: dict[str, tuple[ast.Value, Span]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    #: Where each ``set`` is declared (the settings the recipe gives, not the defaults).
    setting_spans: dict[str, Span] = field(default_factory=dict)
    data: dict[str, Any] | None = None
    data_span: Span | None = None
    models: dict[str, ModelSpec] = field(default_factory=dict)
    #: Ensemble declarations, checked once every model is known.
    ensembles: list[tuple[ast.ModelDecl, ModelSpec]] = field(default_factory=list)


def _duplicate(kind: str, name: str, span: Span, first: Span) -> Diagnostic:
    return error(
        "KDR101",
        f"{kind} `{name}` is declared twice",
        span,
        Note(message="first declared here", span=first),
        Note(kind="help", message="rename one of them"),
    )


def parse_overrides(
    overrides: Sequence[str],
    params: dict[str, tuple[ast.Value, Span]],
    report: Callable[[Diagnostic], None],
) -> dict[str, tuple[ast.Value, Span]]:
    """Apply ``--set NAME=VALUE`` to the declared params (KDR105 when they do not fit)."""
    out = dict(params)
    for item in overrides:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            report(error("KDR105", f"`--set {item}` must have the form NAME=VALUE"))
            continue
        if name not in params:
            notes = [n for n in (did_you_mean(name, params),) if n]
            if not params:
                notes.append(Note(kind="help", message="this recipe declares no params"))
            report(
                error("KDR105", f"`--set {name}=...` names no param of this recipe", None, *notes)
            )
            continue
        value = parse_value(text.strip())
        decl_span = params[name][1]
        if value is None:
            report(
                error(
                    "KDR105",
                    f"`--set {name}={text}`: the value does not parse",
                    decl_span,
                    Note(
                        kind="help",
                        message="give a number, a percentage like 50%, "
                        'a "string", a name or a call',
                    ),
                )
            )
            continue
        # Keep the declaration's span so later diagnostics point into the recipe.
        out[name] = (_respan(value, decl_span), decl_span)
    return out


def _respan(value: ast.Value, span: Span) -> ast.Value:
    return value.model_copy(update={"span": span})


def collect(
    recipe: ast.Recipe, file: str, overrides: Sequence[str], report: Callable[[Diagnostic], None]
) -> tuple[Declarations, Values]:
    from pathlib import PurePath

    decls = Declarations(name=PurePath(file).stem if file != "<recipe>" else "recipe")
    seen: dict[tuple[str, str], Span] = {}

    def first_time(kind: str, name: str, span: Span) -> bool:
        if (kind, name) in seen:
            report(_duplicate(kind, name, span, seen[(kind, name)]))
            return False
        seen[(kind, name)] = span
        return True

    for d in recipe.decls:
        if isinstance(d, ast.ParamDecl) and first_time("param", d.name.value, d.name.span):
            decls.params[d.name.value] = (d.value, d.name.span)
    declared = dict(decls.params)
    decls.params = parse_overrides(overrides, decls.params, report)
    values = Values(decls.params, report)
    values.overridden = {n for n, v in decls.params.items() if v is not declared[n]}
    # A param's value must be a value, not another param (no chains, no cycles).
    for name, (value, _) in list(decls.params.items()):
        if isinstance(value, ast.Ref):
            report(error("KDR104", f"param `{name}` must be a value, not a reference", value.span))
            del decls.params[name]

    settings = dict(DEFAULT_SETTINGS)
    for d in recipe.decls:
        if isinstance(d, ast.RecipeDecl):
            if first_time("recipe name", "recipe", d.span):
                decls.name = d.name.value
        elif isinstance(d, ast.SetDecl):
            if first_time("setting", d.key.value, d.key.span):
                checked = check_setting(d, values)
                if checked is not None:
                    settings[checked[0]] = checked[1]
                    decls.setting_spans[checked[0]] = d.span
        elif isinstance(d, ast.DataDecl):
            if first_time("data", "data", d.span):
                decls.data = _data(d, values)
                decls.data_span = d.span
        elif isinstance(d, ast.ModelDecl) and first_time("model", d.name.value, d.name.span):
            spec = _model(d, values)
            if spec is not None:
                decls.models[spec.name] = spec
                if spec.kind == "ensemble":
                    decls.ensembles.append((d, spec))
    decls.settings = settings
    for d, spec in decls.ensembles:
        check_ensemble(d.call, spec, decls.models, set(decls.params), report)
    return decls, values


def _data(d: ast.DataDecl, values: Values) -> dict[str, Any] | None:
    return data_spec(d.call, d.name.value if d.name else "data", values)


def data_spec(call: ast.Call, name: str, values: Values) -> dict[str, Any] | None:
    """The plan's data entry for a dataset call (KDR100 for an unknown dataset)."""
    if not call.factory and call.callee not in DATASETS:
        values.report(unknown("KDR100", "dataset", call.callee, call.span, DATASETS))
        return None
    val = call.kwarg("val")
    eval_value = call.kwarg("eval")
    eval_arg = values.resolve(eval_value)[0] if eval_value is not None else None
    eval_folder = eval_arg.value if isinstance(eval_arg, ast.String) else "val"
    if (
        val is not None
        and not call.factory
        and not _check_val(call.callee, val, values, eval_folder)
    ):
        return None
    literal = values.literal(call)
    literal["name"] = name
    return literal


def _check_val(dataset: str, v: ast.Value, values: Values, eval_folder: str) -> bool:
    """``val=N`` (a seeded split of N training images) on every source; ``imagefolder`` may
    name a folder instead (``val="val"``), not its evaluation folder (``eval=``, default
    ``"val"``)."""
    resolved, decl = values.resolve(v)
    if resolved is None:
        return False
    if dataset == "imagefolder" and isinstance(resolved, ast.String):
        if not resolved.value:
            values.report(error("KDR104", "`val` must name a folder", v.span))
            return False
        if resolved.value == eval_folder:
            values.report(
                error(
                    "KDR104",
                    f'`val` names the evaluation folder ("{eval_folder}")',
                    v.span,
                    Note(
                        kind="help",
                        message="imagefolder's evaluation folder is `eval=` (default "
                        '"val"); give the validation split a folder of its own, like '
                        '`imagefolder("train", eval="test", val="val")`, or `val=N`',
                    ),
                )
            )
            return False
        return True
    if isinstance(resolved, ast.Number):
        return values.count(v, "the validation split (`val`)") is not None
    folder = ' or a folder like `val="val"`' if dataset == "imagefolder" else ""
    values.report(
        error(
            "KDR104",
            f"`val` is the number of training images held out for validation{folder}",
            v.span,
            *[n for n in (decl,) if n],
            Note(kind="help", message="for example `val=1000`"),
        )
    )
    return False


def _model(d: ast.ModelDecl, values: Values) -> ModelSpec | None:
    weights = d.weights.value if d.weights else None
    return model_spec(d.name.value, d.call, weights, d.name.span, values)


def model_spec(
    name: str, call: ast.Call, weights: str | None, span: Span | None, values: Values
) -> ModelSpec | None:
    """A model declared by a call (KDR100 for an unknown constructor)."""
    if not call.factory and call.callee == "ensemble":
        return ModelSpec(name=name, kind="ensemble", span=span)
    if not call.factory and not is_model_constructor(call.callee):
        diag = unknown(
            "KDR100",
            "model constructor",
            call.callee,
            call.span,
            (*BUILTIN_MODELS, *ZOO),
            list_choices=False,
        )
        if not diag.notes:  # no close name: say where other models come from
            other = Note(
                kind="help",
                message="timm and Hugging Face models take a prefix (`timm.<name>`, "
                '`hf.<ModelClass>`); your own, a factory `"pkg.mod:fn"(...)`',
            )
            diag = diag.model_copy(update={"notes": (other,)})
        values.report(diag)
        # Still declared (the recipe has an error, so no plan is built): its uses are not
        # reported again as unknown models.
        broken = True
    else:
        broken = False
    literal = values.literal(call)
    return ModelSpec(
        name=name,
        kind="factory" if call.factory else "constructor",
        span=span,
        constructor=call.callee,
        args=literal["args"],
        kwargs=literal["kwargs"],
        weights_path=weights,
        broken=broken,
    )


def check_ensemble(
    call: ast.Call,
    spec: ModelSpec,
    models: dict[str, ModelSpec],
    params: set[str],
    report: Callable[[Diagnostic], None],
) -> None:
    """KDR206: at least two members, each a model; fills ``spec.members``."""
    if len(call.args) < 2 or call.kwargs:
        report(
            error(
                "KDR206",
                f"an ensemble needs at least 2 models, got {len(call.args)}",
                call.span,
                Note(kind="help", message="write `ensemble(teacher_a, teacher_b)`"),
            )
        )
    members: list[str] = []
    for arg in call.args:
        if not isinstance(arg, ast.Name) or arg.value in params:
            report(error("KDR206", "an ensemble member must be a declared model", arg.span))
            continue
        if arg.value == spec.name:
            report(error("KDR206", f"ensemble `{spec.name}` cannot contain itself", arg.span))
            continue
        if arg.value not in models:
            notes = [n for n in (did_you_mean(arg.value, models),) if n]
            report(error("KDR100", f"unknown model `{arg.value}` in ensemble", arg.span, *notes))
            continue
        members.append(arg.value)
    spec.members = members
