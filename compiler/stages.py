"""Lowers the pipeline into :class:`~compiler.program.Step` s: subjects, teachers, options.

``repeat N { ... }`` is unrolled here: its body is lowered once per iteration, so a
``prune 16%`` inside removes 16% of the channels that remain at each iteration (four
iterations keep 0.84^4 = 50% of them). Diagnostics from repeated iterations carry the same
span and are reported once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from compiler.declarations import Declarations, check_ensemble
from compiler.program import ModelSpec, Step, TeacherRef
from compiler.values import Values, did_you_mean, unknown
from compiler.zoo import ZOO, is_zoo_name
from recipe_lang import ast
from recipe_lang.diagnostics import Diagnostic, Note, Span, error
from recipe_lang.printer import call as call_text

#: Epochs of a ``distill`` stage that gives no duration (the one-liner form).
DEFAULT_DISTILL_EPOCHS = 3
DEFAULT_TEMPERATURE = 4.0
DEFAULT_ALPHA = 0.9
DEFAULT_CALIBRATION_BATCHES = 32
#: The most stage occurrences a recipe may unroll to. ``repeat`` sizes are computed before
#: anything is unrolled, so `repeat 1000000 { ... }` is refused at once, not after the work.
MAX_STEPS = 20_000

PRUNE_WORDS = {
    "channels": "granularity",
    "weights": "granularity",
    "local": "ranking",
    "global": "ranking",
}
CRITERIA = ("l1", "l2", "random", "taylor")
QUANT_WORDS = {
    "static": "mode",
    "dynamic": "mode",
    "qat": "mode",
    "per_channel": "granularity",
    "per_tensor": "granularity",
}
PRECISIONS = ("int8",)
EXPORT_FORMATS = ("onnx", "torchscript", "pt2", "checkpoint")
REPLACEMENTS = ("depthwise_separable", "ghost", "group")
BUDGET_UNITS = ("params", "macs")
MODIFIERS = ("distill", "label_smoothing", "mixup", "cutmix", "lr")
_EPOCH_UNITS = {"epoch": "epochs", "epochs": "epochs", "step": "steps", "steps": "steps"}


class StageLowering:
    def __init__(self, decls: Declarations, values: Values, report: Callable[[Diagnostic], None]):
        self.decls = decls
        self.values = values
        self.report = report
        self.models = decls.models
        self.steps: list[Step] = []
        #: snapshot name -> span of the stage that takes it
        self.snapshots: dict[str, Span] = {}
        self.future_snapshots: dict[str, Span] = {}
        self._sizes: dict[int, int] = {}

    # ---- entry -----------------------------------------------------------------------------
    def lower(self, stages: list[ast.Stage]) -> list[Step]:
        self._collect_snapshots(stages)
        self._lower_block(stages, ())
        return self.steps

    def _collect_snapshots(self, stages: list[ast.Stage]) -> None:
        for s in stages:
            if isinstance(s, ast.SnapshotStage):
                name = s.name.value
                if name in self.models:
                    self.report(
                        error(
                            "KDR101",
                            f"snapshot `{name}` has the name of a model",
                            s.name.span,
                            Note(message="the model is declared here", span=self.models[name].span),
                        )
                    )
                elif name in self.future_snapshots:
                    self.report(
                        error(
                            "KDR101",
                            f"snapshot `{name}` is taken twice",
                            s.name.span,
                            Note(message="first taken here", span=self.future_snapshots[name]),
                        )
                    )
                else:
                    self.future_snapshots[name] = s.name.span
            elif isinstance(s, ast.RepeatStage):
                self._collect_snapshots(s.stages)

    def _unrolled_size(self, stages: list[ast.Stage]) -> int:
        """How many stage occurrences ``stages`` unroll to (counts that fail checks count 1).

        Memoized per block: deeply nested repeats are sized once each, not once per ancestor.
        """
        key = id(stages)
        if key in self._sizes:
            return self._sizes[key]
        total = 0
        for s in stages:
            if isinstance(s, ast.RepeatStage):
                value, _ = self.values.resolve(s.count)
                n = 1
                if isinstance(value, ast.Number) and math.isfinite(value.value):
                    n = max(int(value.value), 1)
                total += n * self._unrolled_size(s.stages)
            else:
                total += 1
            if total > MAX_STEPS:
                break
        self._sizes[key] = total
        return total

    def _lower_block(self, stages: list[ast.Stage], iteration: tuple[int, ...]) -> None:
        for s in stages:
            if isinstance(s, ast.RepeatStage):
                n = self.values.count(s.count, "`repeat` count")
                size = (n or 1) * self._unrolled_size(s.stages)
                if len(self.steps) + size > MAX_STEPS:
                    self.report(
                        error(
                            "KDR102",
                            f"the pipeline would unroll to more than {MAX_STEPS:,} stages",
                            s.span,
                            Note(kind="help", message="lower the `repeat` count"),
                        )
                    )
                    return
                for i in range(n or 1):
                    self._lower_block(s.stages, (*iteration, i))
            else:
                self.steps.append(self._lower_stage(s, iteration))

    # ---- names -----------------------------------------------------------------------------
    def _placeholder(self, name: str) -> str:
        if name not in self.models:
            self.models[name] = ModelSpec(name=name, kind="placeholder", span=None)
        return name

    def subject(self, s: ast.Stage, step: Step) -> str:
        name = s.subject.value if s.subject else "student"
        span = s.subject.span if s.subject else s.span
        if name in self.snapshots:
            if s.kind not in ("evaluate", "export"):
                self.report(
                    error(
                        "KDR104",
                        f"`{name}` is a snapshot, a frozen copy: `{s.kind}` cannot change it",
                        span,
                        Note(
                            kind="help",
                            message="only `evaluate` and `export` act on "
                            "a snapshot; use it as a teacher",
                        ),
                    )
                )
                step.broken = True
            return name
        spec = self.models.get(name)
        if spec is None:
            if name == "student":
                return self._placeholder(name)
            notes = [n for n in (did_you_mean(name, [*self.models, *self.snapshots]),) if n]
            if name in self.future_snapshots:
                notes = [
                    Note(
                        message=f"snapshot `{name}` is taken later",
                        span=self.future_snapshots[name],
                    )
                ]
            self.report(error("KDR100", f"unknown model `{name}`", span, *notes))
            step.broken = True
            return name
        if spec.kind == "ensemble" and s.kind not in ("evaluate", "export"):
            self.report(
                error(
                    "KDR104",
                    f"`{name}` is an ensemble; `{s.kind}` acts on one model",
                    span,
                    Note(kind="help", message="apply the stage to its members"),
                )
            )
            step.broken = True
        return name

    def teacher(self, t: ast.Teacher, step: Step) -> str | None:
        if isinstance(t, ast.TeacherName):
            name = t.name
            if name in self.snapshots or name in self.models:
                return name
            if name in self.future_snapshots:
                self.report(
                    error(
                        "KDR100",
                        f"snapshot `{name}` is used before it is taken",
                        t.span,
                        Note(message="it is taken here", span=self.future_snapshots[name]),
                    )
                )
                return None
            if is_zoo_name(name):  # a bare zoo name: the zoo model with its default weights
                if name not in self.models:
                    self.models[name] = ModelSpec(
                        name=name,
                        kind="constructor",
                        span=t.span,
                        constructor=name,
                        pretrained=True,
                        inline=True,
                    )
                return name
            if name == "student":
                return self._placeholder(name)
            candidates = [*self.models, *self.snapshots, *ZOO]
            notes = [n for n in (did_you_mean(name, candidates),) if n]
            self.report(error("KDR100", f"unknown teacher `{name}`", t.span, *notes))
            return None
        return self._inline_teacher(t)

    def _inline_teacher(self, call: ast.Call) -> str | None:
        name = call_text(call)
        if name in self.models:
            return name
        if not call.factory and call.callee == "ensemble":
            spec = ModelSpec(name=name, kind="ensemble", span=call.span, inline=True)
            check_ensemble(call, spec, self.models, set(self.decls.params), self.report)
            self.models[name] = spec
            return name
        if not call.factory and not is_zoo_name(call.callee) and call.callee != "convnet":
            self.report(
                unknown(
                    "KDR100", "teacher constructor", call.callee, call.span, ZOO, list_choices=False
                )
            )
            return None
        literal = self.values.literal(call)
        self.models[name] = ModelSpec(
            name=name,
            kind="factory" if call.factory else "constructor",
            span=call.span,
            constructor=call.callee,
            args=literal["args"],
            kwargs=literal["kwargs"],
            inline=True,
        )
        return name

    # ---- stage parts -----------------------------------------------------------------------
    def duration(self, d: ast.Duration) -> dict[str, int] | None:
        unit = _EPOCH_UNITS.get(d.unit.value)
        if unit is None:
            self.report(
                error(
                    "KDR104",
                    f"`{d.unit.value}` is not a duration unit",
                    d.unit.span,
                    Note(kind="help", message="write `epochs` or `steps`"),
                )
            )
            return None
        n = self.values.count(d.count, f"the number of {unit}")
        return None if n is None else {unit: n}

    def teacher_options(self, options: list[ast.Option], ref: TeacherRef) -> None:
        seen: set[str] = set()
        for o in options:
            key = o.name.value
            if key in seen:
                self.report(error("KDR101", f"`{key}` is given twice", o.name.span))
                continue
            seen.add(key)
            if key == "temperature":
                t = self.values.number(o.value, "temperature", low=0, low_open=True)
                if t is not None:
                    ref.temperature = t
            elif key == "alpha":
                a = self.values.number(o.value, "alpha", low=0, high=1)
                if a is not None:
                    ref.alpha = a
            else:
                self.report(
                    unknown(
                        "KDR103", "distillation option", key, o.name.span, ["temperature", "alpha"]
                    )
                )
            ref.options_span = (
                o.span if ref.options_span is None else Span.cover(ref.options_span, o.span)
            )

    def training(
        self,
        step: Step,
        duration: ast.Duration | None,
        mods: list[ast.Modifier],
        default_epochs: int | None = None,
        teacher: TeacherRef | None = None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label_smoothing": 0.0,
            "mixup": None,
            "cutmix": None,
            "lr": None,
            "distill": None,
        }
        if duration is not None:
            out.update(self.duration(duration) or {"epochs": 1})
        else:
            out["epochs"] = default_epochs or 1
        seen: dict[str, Span] = {}
        for m in mods:
            key = "distill" if isinstance(m, ast.DistillModifier) else m.name.value
            if key in seen:
                self.report(
                    error(
                        "KDR101",
                        f"modifier `{key}` is given twice",
                        m.span,
                        Note(message="first given here", span=seen[key]),
                    )
                )
                continue
            seen[key] = m.span
            if isinstance(m, ast.DistillModifier):
                if teacher is not None:
                    self.report(
                        error(
                            "KDR103",
                            "`with distill` on a `distill` stage",
                            m.span,
                            Note(
                                kind="help",
                                message="the stage already has a teacher: `distill M from T`",
                            ),
                        )
                    )
                    continue
                name = self.teacher(m.teacher, step)
                if name is not None:
                    teacher = TeacherRef(
                        name=name,
                        span=m.teacher.span,
                        temperature=DEFAULT_TEMPERATURE,
                        alpha=DEFAULT_ALPHA,
                    )
                    self.teacher_options(m.options, teacher)
                continue
            self._value_modifier(m, out)
        if teacher is not None:
            step.teacher = teacher
            out["distill"] = {
                "teacher": teacher.name,
                "temperature": teacher.temperature,
                "alpha": teacher.alpha,
            }
        return out

    def _value_modifier(self, m: ast.ValueModifier, out: dict[str, Any]) -> None:
        key = m.name.value
        if key == "label_smoothing":
            x = self.values.number(m.value, "label_smoothing", low=0, high=1, high_open=True)
        elif key in ("mixup", "cutmix"):
            x = self.values.number(m.value, key, low=0, low_open=True)
        elif key == "lr":
            x = self.values.number(m.value, "lr", low=0, low_open=True)
        else:
            self.report(unknown("KDR103", "modifier", key, m.name.span, MODIFIERS))
            return
        if x is not None:
            out[key] = x

    def scopes(self, scopes: list[ast.Scope]) -> list[str]:
        return [s.pattern for s in scopes]

    def words(
        self, words: list[ast.Ident], table: dict[str, str], what: str, defaults: dict[str, str]
    ) -> dict[str, str]:
        out = dict(defaults)
        given: dict[str, ast.Ident] = {}
        for w in words:
            slot = table.get(w.value)
            if slot is None:
                self.report(unknown("KDR103", f"{what} option", w.value, w.span, table))
                continue
            if slot in given:
                self.report(
                    error(
                        "KDR103",
                        f"`{w.value}` conflicts with `{given[slot].value}`: one {slot} per stage",
                        w.span,
                    )
                )
                continue
            given[slot] = w
            out[slot] = w.value
        return out

    # ---- stages ----------------------------------------------------------------------------
    def _lower_stage(self, s: ast.Stage, iteration: tuple[int, ...]) -> Step:
        step = Step(
            index=len(self.steps), kind=s.kind, subject="", span=s.span, node=s, iteration=iteration
        )
        step.subject = self.subject(s, step)
        lower = getattr(self, f"_stage_{s.kind}")
        lower(s, step)
        return step

    def _stage_train(self, s: ast.TrainStage, step: Step) -> None:
        step.params = {"verb": s.verb}
        step.training = self.training(step, s.duration, s.modifiers)
        step.training_span = s.span

    def _stage_distill(self, s: ast.DistillStage, step: Step) -> None:
        name = self.teacher(s.teacher, step)
        ref = None
        if name is not None:
            ref = TeacherRef(
                name=name, span=s.teacher.span, temperature=DEFAULT_TEMPERATURE, alpha=DEFAULT_ALPHA
            )
            self.teacher_options(s.options, ref)
        else:
            step.broken = True
        step.training = self.training(step, s.duration, s.modifiers, DEFAULT_DISTILL_EPOCHS, ref)
        step.training_span = s.span

    def _stage_snapshot(self, s: ast.SnapshotStage, step: Step) -> None:
        name = s.name.value
        step.params = {"name": name}
        if name not in self.models:
            self.snapshots.setdefault(name, s.name.span)
            self.models[name] = ModelSpec(
                name=name, kind="snapshot", span=s.name.span, source=step.subject
            )

    def _stage_prune(self, s: ast.PruneStage, step: Step) -> None:
        params: dict[str, Any] = self.words(
            s.words, PRUNE_WORDS, "prune", {"granularity": "channels", "ranking": "local"}
        )
        if s.budget is not None:
            params["budget"] = self._budget(s.budget, params["granularity"])
        elif s.amount is not None:
            params["ratio"] = self.values.ratio(s.amount, "the pruning amount")
        params["criterion"] = "l1"
        if s.criterion is not None:
            allowed = CRITERIA if params["granularity"] == "channels" else ("l1", "l2", "random")
            if s.criterion.value in allowed:
                params["criterion"] = s.criterion.value
            elif s.criterion.value in CRITERIA:
                self.report(
                    error(
                        "KDR103",
                        f"`by {s.criterion.value}` does not apply to `weights` pruning",
                        s.criterion.span,
                        Note(
                            kind="help",
                            message="unstructured pruning ranks weights by magnitude: `by l1`",
                        ),
                    )
                )
            else:
                self.report(
                    unknown(
                        "KDR103", "pruning criterion", s.criterion.value, s.criterion.span, CRITERIA
                    )
                )
        params["include"] = self.scopes(s.include)
        params["exclude"] = self.scopes(s.exclude)
        step.params = params
        if s.duration is not None:
            step.training = self.training(step, s.duration, s.modifiers)
            step.training_span = Span.cover(s.modifiers[0].span, s.duration.span)

    def _budget(self, b: ast.Budget, granularity: str) -> dict[str, Any] | None:
        unit = b.unit.value
        if unit not in BUDGET_UNITS:
            self.report(unknown("KDR103", "budget unit", unit, b.unit.span, BUDGET_UNITS))
            return None
        if granularity != "channels":
            self.report(error("KDR103", "a budget needs `channels` pruning", b.span))
            return None
        value, decl = self.values.resolve(b.value)
        if isinstance(value, ast.Percent):
            ratio = self.values.ratio(b.value, "the budget")
            return None if ratio is None else {"kind": unit, "fraction": ratio}
        if isinstance(value, (ast.Number, ast.Size)):
            if not math.isfinite(value.value):  # already reported as too large
                return None
            if value.value < 1:
                self.report(error("KDR102", f"the budget must be at least 1 {unit}", b.value.span))
                return None
            return {"kind": unit, "value": int(value.value)}
        if value is not None:
            self.report(
                error(
                    "KDR104",
                    "a budget is a count like `2.5M` or a percentage",
                    b.value.span,
                    *[n for n in (decl,) if n],
                )
            )
        return None

    def _stage_replace(self, s: ast.ReplaceStage, step: Step) -> None:
        if s.target.value != "convs":
            self.report(
                unknown("KDR103", "replace target", s.target.value, s.target.span, ["convs"])
            )
        params: dict[str, Any] = {
            "include": self.scopes(s.include),
            "exclude": self.scopes(s.exclude),
        }
        r = s.replacement
        kind = r.value if isinstance(r, ast.Ident) else r.callee
        if kind not in REPLACEMENTS:
            self.report(unknown("KDR103", "replacement", kind, r.span, REPLACEMENTS))
            step.broken = True
        elif kind == "group":
            if isinstance(r, ast.Call) and len(r.args) == 1 and not r.kwargs:
                params["groups"] = self.values.count(r.args[0], "the number of groups", minimum=2)
            else:
                self.report(
                    error("KDR104", "`group` needs its number of groups: `group(4)`", r.span)
                )
        elif isinstance(r, ast.Call):
            self.report(error("KDR104", f"`{kind}` takes no arguments", r.span))
        params["kind"] = kind
        step.params = params

    def _stage_quantize(self, s: ast.QuantizeStage, step: Step) -> None:
        params: dict[str, Any] = {"precision": "int8"}
        if s.precision.value not in PRECISIONS:
            self.report(
                unknown("KDR103", "precision", s.precision.value, s.precision.span, PRECISIONS)
            )
            step.broken = True
        params.update(
            self.words(
                s.words, QUANT_WORDS, "quantize", {"mode": "static", "granularity": "per_channel"}
            )
        )
        if s.calibrate is not None:
            if params["mode"] != "static":
                self.report(
                    error(
                        "KDR103",
                        f"`calibrate` does not apply to `{params['mode']}` quantization",
                        s.calibrate.span,
                        Note(
                            kind="help", message="only `static` quantization calibrates; remove it"
                        ),
                    )
                )
            else:
                n = self.values.count(s.calibrate.count, "the number of calibration batches")
                params["calibrate_batches"] = n
            unit = s.calibrate.unit
            if unit is not None and unit.value not in ("batch", "batches"):
                self.report(
                    unknown("KDR103", "calibration unit", unit.value, unit.span, ["batches"])
                )
        if params["mode"] == "static":
            params.setdefault("calibrate_batches", DEFAULT_CALIBRATION_BATCHES)
        step.params = params
        if s.duration is not None:
            step.training = self.training(step, s.duration, s.modifiers)
            step.training_span = Span.cover(s.modifiers[0].span, s.duration.span)

    def _stage_evaluate(self, s: ast.EvaluateStage, step: Step) -> None:
        step.params = {}

    def _stage_export(self, s: ast.ExportStage, step: Step) -> None:
        fmt = s.format.value
        if fmt not in EXPORT_FORMATS:
            self.report(unknown("KDR103", "export format", fmt, s.format.span, EXPORT_FORMATS))
        if not s.path.value:
            self.report(error("KDR104", "the export path is empty", s.path.span))
        step.params = {"format": fmt, "path": s.path.value}
