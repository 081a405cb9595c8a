"""The plan: a versioned, hashed JSON document of ordered passes, built as a networkx DAG.

Each stage expands into passes (``quantize int8`` -> ``fuse.bn``, ``quant.prepare``,
``quant.calibrate``, ``quant.convert``; ``prune ... with ... for N epochs`` -> the cut, then the
recovery training). Edges are the real dependencies between passes under the runtime's
in-place semantics: a pass that changes model M waits for the pass that produced M's current
version and for every pass that reads that version (evaluate, export, snapshot, or a
distillation that uses M as its teacher); a pass that reads a teacher waits for the teacher's
current version. The execution order is the DAG's lexicographic topological order keyed by
source position, so the same recipe always gives the same plan, byte for byte.

    python -m compiler.plan --schema docs/plan.schema.json   # write the published JSON schema
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compiler.lower import expand
from compiler.ops import OPS, AnyPass, PassBase, make_pass, training_of
from compiler.program import Program

#: Version 2: each op's params are a closed, typed model (``compiler.ops``).
PLAN_VERSION = 2

#: A pass of the plan (the concrete class is the one of its op, see ``compiler.ops``).
PlanPass = PassBase


class PlanSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    sha256: str


class PlanModel(BaseModel):
    """A model: a constructor call, a factory, an ensemble, a snapshot, or a placeholder."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    constructor: str | None = None
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    weights_path: str | None = None
    pretrained: bool = False
    members: list[str] = Field(default_factory=list)
    source: str | None = None
    inline: bool = False


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kdr_plan_version: int = PLAN_VERSION
    recipe: str
    source: PlanSource
    settings: dict[str, Any]
    params: dict[str, Any]
    #: The dataset call, or None when it is bound at run time (``--data``).
    data: dict[str, Any] | None
    models: dict[str, PlanModel]
    #: Models left to bind at run time (``--student``).
    placeholders: list[str] = Field(default_factory=list)
    passes: list[AnyPass]
    hash: str = ""

    def canonical_json(self) -> str:
        body = self.model_dump(mode="json", exclude={"hash"})
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    def compute_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Read a plan back; :class:`PlanReadError` names the first field that does not fit."""
        return load_plan_json(text)


class PlanReadError(ValueError):
    """A plan JSON that this kdr cannot read (not JSON, or a field that does not fit)."""


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in OPS and i > 0 and isinstance(loc[i - 1], int):
            continue  # the union's tag: the op, already implied by the index
        else:
            out += f".{part}" if out else str(part)
    return out


def load_plan_json(text: str) -> Plan:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise PlanReadError(f"not a JSON document ({exc})") from exc
    try:
        return Plan.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = f"field `{_field(tuple(first['loc']))}`: {first['msg']}"
        version = raw.get("kdr_plan_version") if isinstance(raw, dict) else None
        if version != PLAN_VERSION:
            message += (
                f" (the plan has version {version}, this kdr reads version {PLAN_VERSION}: "
                "recompile the recipe with `kdr compile`)"
            )
        raise PlanReadError(message) from exc


def _members(program: Program, name: str) -> list[str]:
    spec = program.models.get(name)
    if spec is not None and spec.kind == "ensemble":
        return list(spec.members)
    return [name]


def build_plan(program: Program) -> Plan:
    expanded = [(step, op, params) for step in program.steps for op, params in expand(step)]
    width = max(3, len(str(len(expanded))))
    graph: nx.DiGraph = nx.DiGraph()
    last_writer: dict[str, str] = {}
    readers: dict[str, list[str]] = {}
    passes: dict[str, PlanPass] = {}
    for n, (step, op, params) in enumerate(expanded):
        pid = f"{n:0{width}d}-{op}-{step.subject}"
        deps: list[str] = []
        subject = step.subject
        if subject in last_writer:
            deps.append(last_writer[subject])
        reads: list[str] = []
        training = training_of(params)
        if training is not None and training.distill is not None:
            reads = _members(program, training.distill.teacher)
            deps += [last_writer[m] for m in reads if m in last_writer]
        if OPS[op].read_only:
            readers.setdefault(subject, []).append(pid)
        else:
            deps += readers.get(subject, [])
            readers[subject] = []
            last_writer[subject] = pid
        for m in reads:
            readers.setdefault(m, []).append(pid)
        if OPS[op].produces:
            last_writer[str(getattr(params, str(OPS[op].produces)))] = pid
        deps = sorted(set(deps), key=lambda d: graph.nodes[d]["index"])
        graph.add_node(pid, index=n)
        graph.add_edges_from((d, pid) for d in deps)
        passes[pid] = make_pass(
            op,
            id=pid,
            subject=subject,
            params=params,
            depends_on=deps,
            reads=reads,
            stage=step.index,
            span=step.span,
        )
    order = nx.lexicographical_topological_sort(graph, key=lambda node: graph.nodes[node]["index"])
    models = {name: PlanModel(**spec.to_plan()) for name, spec in program.models.items()}
    plan = Plan(
        recipe=program.name,
        source=PlanSource(
            path=program.file, sha256=hashlib.sha256(program.source.encode()).hexdigest()
        ),
        settings=program.settings,
        params=program.params,
        data=program.data,
        models=models,
        placeholders=sorted(n for n, m in program.models.items() if m.kind == "placeholder"),
        passes=[passes[pid] for pid in order],
    )
    plan.hash = plan.compute_hash()
    return plan


def dependency_graph(plan: Plan) -> nx.DiGraph:
    """The plan's passes as a networkx DAG (edges from dependency to dependent)."""
    g: nx.DiGraph = nx.DiGraph()
    for p in plan.passes:
        g.add_node(p.id, op=p.op, subject=p.subject)
        g.add_edges_from((d, p.id) for d in p.depends_on)
    return g


def schema_json() -> str:
    return json.dumps(Plan.model_json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # pragma: no cover - exercised through the docs test
    if len(sys.argv) == 3 and sys.argv[1] == "--schema":
        with open(sys.argv[2], "w", encoding="utf-8") as fh:
            fh.write(schema_json())
    else:
        print("usage: python -m compiler.plan --schema OUT.json", file=sys.stderr)
        sys.exit(2)
