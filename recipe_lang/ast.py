"""The recipe AST: pydantic models, every node with its source span.

The AST records what the user wrote, not what it means: option words are kept as written
(``Ident``) and validated by the compiler, numbers keep their source text so the printer
reproduces ``5e-4`` as ``5e-4``. Lists whose order carries no meaning (stage options, option
words) are stored in canonical order, so ``parse(fmt(x)) == parse(x)`` up to spans.

>>> from recipe_lang.parser import parse_recipe
>>> r = parse_recipe("prune 50% channels")
>>> r.stages[0].kind, r.stages[0].amount.value
('prune', 50.0)
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from recipe_lang.diagnostics import Span


class Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    span: Span


# ---- values ---------------------------------------------------------------------------------


class Number(Node):
    kind: Literal["number"] = "number"
    value: float
    text: str


class Percent(Node):
    """``50%``: ``value`` is the number before the sign (50.0)."""

    kind: Literal["percent"] = "percent"
    value: float
    text: str


class Size(Node):
    """``2.5M``: ``value`` is the absolute quantity (2_500_000.0)."""

    kind: Literal["size"] = "size"
    value: float
    text: str


class String(Node):
    kind: Literal["string"] = "string"
    value: str


class Name(Node):
    """A bare (possibly dotted) name used as a value: ``cosine``, ``true``, ``resnet50``."""

    kind: Literal["name"] = "name"
    value: str


class Ref(Node):
    """``$epochs``: a reference to a ``param``."""

    kind: Literal["ref"] = "ref"
    name: str


class KeywordArg(Node):
    name: str
    value: Value


class Call(Node):
    """``resnet18(num_classes=10)`` or a factory ``"pkg.mod:fn"(...)``."""

    kind: Literal["call"] = "call"
    callee: str
    factory: bool = False
    args: list[Value] = Field(default_factory=list)
    kwargs: list[KeywordArg] = Field(default_factory=list)

    def kwarg(self, name: str) -> Value | None:
        return next((k.value for k in self.kwargs if k.name == name), None)


#: A numeric slot: a literal or a ``$param`` reference.
Num = Annotated[Union[Number, Percent, Size, Ref], Field(discriminator="kind")]  # noqa: UP007


class NumberList(Node):
    """``[25, 45]``: a list of numbers (schedule milestones). It may be empty as written; the
    compiler says where a list needs items."""

    kind: Literal["list"] = "list"
    items: list[Num] = Field(default_factory=list)


Value = Annotated[
    Union[Number, Percent, Size, String, Name, Ref, Call, NumberList],  # noqa: UP007
    Field(discriminator="kind"),
]
KeywordArg.model_rebuild()


class Ident(Node):
    """A name in a structural position: a declared name, a subject, an option word."""

    value: str


class Comment(Node):
    text: str


# ---- declarations -------------------------------------------------------------------------


class RecipeDecl(Node):
    kind: Literal["recipe"] = "recipe"
    name: String


class ParamDecl(Node):
    kind: Literal["param"] = "param"
    name: Ident
    value: Value


class SetDecl(Node):
    kind: Literal["set"] = "set"
    key: Ident
    value: Value


class DataDecl(Node):
    kind: Literal["data"] = "data"
    name: Ident | None = None
    call: Call


class ModelDecl(Node):
    kind: Literal["model"] = "model"
    name: Ident
    call: Call
    weights: String | None = None


Decl = Annotated[
    Union[RecipeDecl, ParamDecl, SetDecl, DataDecl, ModelDecl],  # noqa: UP007
    Field(discriminator="kind"),
]

# ---- stage parts ----------------------------------------------------------------------------


class Duration(Node):
    """``for 3 epochs``; ``unit`` is validated by the compiler (epoch(s) / step(s))."""

    count: Num
    unit: Ident


class Option(Node):
    """``temperature 4``: a stage option word with a numeric value."""

    name: Ident
    value: Num


class TeacherName(Node):
    kind: Literal["teacher_name"] = "teacher_name"
    name: str


Teacher = Annotated[Union[TeacherName, Call], Field(discriminator="kind")]  # noqa: UP007


class DistillModifier(Node):
    """``with distill from T temperature 2``."""

    kind: Literal["distill"] = "distill"
    teacher: Teacher
    options: list[Option] = Field(default_factory=list)


class ValueModifier(Node):
    """``with cutmix 1.0``, ``label_smoothing 0.1``, ``lr 0.01``, ``ema 0.999``; with a unit:
    ``warmup 2 epochs``."""

    kind: Literal["value"] = "value"
    name: Ident
    value: Num
    unit: Ident | None = None


class CallModifier(Node):
    """``with optimizer sgd(lr=0.01)``, ``schedule multistep(milestones=[2], gamma=0.1)``."""

    kind: Literal["call"] = "call"
    name: Ident
    call: Call


class WordModifier(Node):
    """``with schedule cosine``, ``optimizer sgd``, ``keep best``, ``keep best by loss``."""

    kind: Literal["word"] = "word"
    name: Ident
    word: Ident
    by: Ident | None = None


Modifier = Annotated[
    Union[DistillModifier, ValueModifier, CallModifier, WordModifier],  # noqa: UP007
    Field(discriminator="kind"),
]


class Budget(Node):
    """``to 2.5M params`` / ``to 40% macs``."""

    kind: Literal["budget"] = "budget"
    value: Num
    unit: Ident


class NMPattern(Node):
    """``2:4``: every group of ``m`` consecutive weights keeps its ``n`` largest."""

    kind: Literal["nm"] = "nm"
    n: int
    m: int


class Gradual(Node):
    """``gradually over 3 epochs [from 10%] [every 100 steps] [cubic]``: a prune that ramps its
    sparsity while it trains for ``over``. The options after ``over`` come in any order."""

    over: Duration
    start: Num | None = None
    every: Duration | None = None
    curve: Ident | None = None


class Calibrate(Node):
    """``calibrate 16 batches``."""

    count: Num
    unit: Ident | None = None


class Scope(Node):
    pattern: str
    quoted: bool = False


# ---- stages ---------------------------------------------------------------------------------


class StageBase(Node):
    #: A simple stage's layout, e.g. ``"snapshot {subject} as {name}"``: the AST builder and the
    #: printer handle a stage that has one with no code of their own (``{subject}`` is optional
    #: and may be left out; every other placeholder is an ``Ident`` or ``String`` field). Stages
    #: with optional parts or free order keep their own builder and printer code.
    SYNTAX: ClassVar[str | None] = None
    subject: Ident | None = None

    def subject_name(self, default: str = "student") -> str:
        return self.subject.value if self.subject else default


class TrainStage(StageBase):
    kind: Literal["train"] = "train"
    verb: Literal["train", "finetune"] = "train"
    duration: Duration
    modifiers: list[Modifier] = Field(default_factory=list)


class DistillStage(StageBase):
    kind: Literal["distill"] = "distill"
    teacher: Teacher
    options: list[Option] = Field(default_factory=list)
    duration: Duration | None = None
    modifiers: list[Modifier] = Field(default_factory=list)


class SnapshotStage(StageBase):
    SYNTAX = "snapshot {subject} as {name}"
    kind: Literal["snapshot"] = "snapshot"
    name: Ident


class PruneStage(StageBase):
    kind: Literal["prune"] = "prune"
    #: One of ``amount`` (``50%``), ``pattern`` (``2:4``) and ``budget`` (``to 2.5M params``).
    amount: Num | None = None
    pattern: NMPattern | None = None
    budget: Budget | None = None
    words: list[Ident] = Field(default_factory=list)
    criterion: Ident | None = None
    include: list[Scope] = Field(default_factory=list)
    exclude: list[Scope] = Field(default_factory=list)
    gradual: Gradual | None = None
    modifiers: list[Modifier] = Field(default_factory=list)
    #: Recovery training after a one-shot cut (a gradual prune's duration is ``gradual.over``).
    duration: Duration | None = None


class ReplaceStage(StageBase):
    kind: Literal["replace"] = "replace"
    target: Ident
    include: list[Scope] = Field(default_factory=list)
    exclude: list[Scope] = Field(default_factory=list)
    replacement: Ident | Call


class QuantizeStage(StageBase):
    kind: Literal["quantize"] = "quantize"
    precision: Ident
    words: list[Ident] = Field(default_factory=list)
    calibrate: Calibrate | None = None
    modifiers: list[Modifier] = Field(default_factory=list)
    duration: Duration | None = None


class EvaluateStage(StageBase):
    SYNTAX = "evaluate {subject}"
    kind: Literal["evaluate"] = "evaluate"


class ExportStage(StageBase):
    kind: Literal["export"] = "export"
    format: Ident
    path: String


class RepeatStage(StageBase):
    kind: Literal["repeat"] = "repeat"
    count: Num
    stages: list[Stage]


Stage = Annotated[
    Union[  # noqa: UP007
        TrainStage,
        DistillStage,
        SnapshotStage,
        PruneStage,
        ReplaceStage,
        QuantizeStage,
        EvaluateStage,
        ExportStage,
        RepeatStage,
    ],
    Field(discriminator="kind"),
]
RepeatStage.model_rebuild()


class Recipe(Node):
    """A whole ``.kdr`` file: declarations, then the pipeline."""

    decls: list[Decl] = Field(default_factory=list)
    stages: list[Stage] = Field(default_factory=list)
    comments: list[Comment] = Field(default_factory=list)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        return cls.model_validate_json(text)


def strip_spans(data: Any) -> Any:
    """A node's dump with every ``span`` removed: compare two trees up to positions."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    if isinstance(data, dict):
        return {k: strip_spans(v) for k, v in data.items() if k != "span"}
    if isinstance(data, list):
        return [strip_spans(v) for v in data]
    return data


def same_tree(a: BaseModel, b: BaseModel, *, comments: bool = True) -> bool:
    """True when ``a`` and ``b`` are equal up to spans (and, optionally, comments)."""
    da, db = strip_spans(a), strip_spans(b)
    if not comments:
        da.pop("comments", None)
        db.pop("comments", None)
    return bool(da == db)
