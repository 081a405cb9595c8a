"""The checked form of a recipe that rules and the plan builder read.

Lowering (``compiler.lower``) resolves names and values and unrolls ``repeat`` blocks into a
flat list of :class:`Step` s, one per stage occurrence, each with its parameters checked and
defaults filled in. Compatibility rules walk the steps; the plan builder expands each step
into passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from compiler.zoo import library_weights
from recipe_lang import ast
from recipe_lang.diagnostics import Span

ModelKind = Literal["constructor", "factory", "ensemble", "snapshot", "placeholder"]


@dataclass
class ModelSpec:
    """A model the recipe declares, names inline, snapshots or leaves to bind at run time."""

    name: str
    kind: ModelKind
    span: Span | None
    constructor: str | None = None
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: ``from "path"``.
    weights_path: str | None = None
    #: Zoo default weights (a bare zoo name used as a teacher).
    pretrained: bool = False
    members: list[str] = field(default_factory=list)
    #: For snapshots: the model copied, and the step that copies it.
    source: str | None = None
    inline: bool = False
    #: Its declaration has an error (an unknown constructor): kept so that its uses are not
    #: reported again, but no advice is given about it.
    broken: bool = False

    @property
    def has_initial_weights(self) -> bool:
        """Whether it holds trained weights before any stage runs."""
        weights = self.kwargs.get("weights")
        library = self.kind == "constructor" and library_weights(self.constructor, self.kwargs)
        return bool(
            self.weights_path or self.pretrained or (weights not in (None, False, "")) or library
        )

    @property
    def pretrained_elsewhere(self) -> bool:
        """Zoo weights (``weights=...`` or a bare zoo teacher): trained, but on the zoo's own
        classes; the runtime re-initialises the classifier for the data's."""
        weights = self.kwargs.get("weights")
        timm = library_weights(self.constructor, self.kwargs) == "pretrained"
        return (
            self.kind == "constructor"
            and not self.weights_path
            and (self.pretrained or weights not in (None, False, "") or timm)
        )

    def to_plan(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.constructor is not None:
            out.update(constructor=self.constructor, args=self.args, kwargs=self.kwargs)
        if self.weights_path is not None:
            out["weights_path"] = self.weights_path
        if self.pretrained:
            out["pretrained"] = True
        if self.members:
            out["members"] = self.members
        if self.source is not None:
            out["source"] = self.source
        if self.inline:
            out["inline"] = True
        return out


@dataclass
class TeacherRef:
    """A teacher as used by one step: a model name (declared, inline, snapshot or ensemble)."""

    name: str
    span: Span
    temperature: float = 4.0
    alpha: float = 0.9
    options_span: Span | None = None


@dataclass
class Step:
    """One stage occurrence after ``repeat`` unrolling, with checked parameters."""

    index: int
    kind: str
    subject: str
    span: Span
    node: ast.Stage
    params: dict[str, Any] = field(default_factory=dict)
    teacher: TeacherRef | None = None
    #: The training phase of the step (train, distill, or a recovery clause); None if none.
    training: dict[str, Any] | None = None
    training_span: Span | None = None
    #: Iteration numbers of the enclosing ``repeat`` blocks, outermost first.
    iteration: tuple[int, ...] = ()
    #: The step could not be fully checked (an error was reported on it).
    broken: bool = False

    @property
    def trains(self) -> bool:
        return self.training is not None

    @property
    def subject_span(self) -> Span:
        subj = self.node.subject
        return subj.span if subj is not None else self.span


@dataclass
class Program:
    """Everything the rules and the plan builder need."""

    file: str
    source: str
    recipe: ast.Recipe
    name: str
    params: dict[str, Any]
    settings: dict[str, Any]
    data: dict[str, Any] | None
    data_span: Span | None
    models: dict[str, ModelSpec]
    steps: list[Step]
