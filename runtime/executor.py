"""``kdr run``: execute a plan's passes, measure every stage, checkpoint, report, resume.

Execution is deterministic on CPU: every pass seeds its own RNGs from the recipe's seed and
its position in the plan, so a resumed run computes exactly what the uninterrupted one would
have from the same checkpoints. Models are all built (and seeded) before the first pass, in
plan order, so a model first used late in the pipeline is initialised identically whether or
not the run was resumed.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from compiler.plan import Plan, PlanPass
from recipe_lang.diagnostics import Diagnostic, KdrError, Note, error
from runtime import distributed
from runtime.checkpoint import load_checkpoint, save_checkpoint, verify_checkpoint
from runtime.data import DataBundle, build_data
from runtime.engine import DistillConfig, TrainConfig, fit, resolve_device
from runtime.metrics import measure
from runtime.modelstore import Lineage, ModelStore, rebuild
from runtime.seeding import seed_everything
from runtime.workspace import RunDir, RunState

#: Ops the executor runs itself; every other op is a registered graph pass.
TRAINING_OPS = {"train", "distill"}
READ_ONLY_OPS = {"evaluate", "export", "snapshot"}


@dataclass
class RunOptions:
    run_dir: Path
    resume: bool = False
    quiet: bool = False
    progress: bool = False


def pass_seed(plan: Plan, index: int) -> int:
    return (int(plan.settings.get("seed", 0)) * 1_000_003 + index * 7_919) % (2**31 - 1)


def need_data(plan: Plan) -> KdrError:
    first = plan.passes[0] if plan.passes else None
    span = first.span if first is not None else None
    return KdrError(
        error(
            "KDR207",
            "this recipe needs data and none is declared or bound",
            span,
            Note(
                kind="help",
                message="declare `data = mnist10k()` or pass --data \"cifar10(root='~/data')\"",
            ),
        )
    )


def load_data(plan: Plan) -> DataBundle:
    if plan.data is None:
        raise need_data(plan)
    seed = int(plan.settings.get("seed", 0))
    return build_data(
        plan.data["call"],
        list(plan.data.get("args") or []),
        dict(plan.data.get("kwargs") or {}),
        seed=seed,
    )


def input_models(plan: Plan) -> list[str]:
    """Models measured as they enter the pipeline: subjects and teachers, in order of use."""
    order: list[str] = []
    for p in plan.passes:
        for name in (p.subject, *p.reads):
            spec = plan.models.get(name)
            if spec is None or spec.kind in ("snapshot", "ensemble") or name in order:
                continue
            order.append(name)
    return order


class Executor:
    def __init__(self, plan: Plan, options: RunOptions):
        self.plan = plan
        self.options = options
        self.device = resolve_device(str(plan.settings.get("device", "auto")))
        self.rundir = RunDir(options.run_dir)
        self.data: DataBundle
        self.store: ModelStore
        self.state = RunState(plan_hash=plan.hash)
        self.example: torch.Tensor

    # ---- set-up ----------------------------------------------------------------------------
    def prepare(self) -> None:
        from runtime.model_checks import preflight

        seed_everything(int(self.plan.settings.get("seed", 0)))
        self.data = load_data(self.plan)
        self.store = ModelStore(self.plan, self.data)
        self.example = self.data.example_batch(8)
        diagnostics = preflight(self.plan, self.data, self.store)
        if any(d.is_error for d in diagnostics):
            raise KdrError(diagnostics)

    def on_main(self, action: Callable[[], None], what: str) -> None:
        """Run ``action`` on rank 0 only, then meet the other ranks at a barrier that also
        tells them whether it succeeded (just ``action()`` in a one-process run)."""
        failure: BaseException | None = None
        if distributed.is_main():
            try:
                action()
            except BaseException as exc:
                failure = exc
        ok = distributed.all_ok(failure is None)
        if failure is not None:
            raise failure
        if not ok:
            raise distributed.peer_failed(what)

    def open_rundir(self) -> None:
        """Rank 0 opens (locks, clears or verifies) the run directory; then, on resume, the
        other ranks load their models from it too."""
        self.on_main(self._open_rundir, "to open the run directory")
        if not distributed.is_main() and self.options.resume:
            previous = self.rundir.read_state()
            if previous is not None:
                self.state = previous
                self._restore()

    def _open_rundir(self) -> None:
        self.rundir.check_usable()
        self.rundir.create()
        self.rundir.lock()
        previous = self.rundir.read_state()
        if self.options.resume and previous is not None:
            if previous.plan_hash != self.plan.hash:
                raise KdrError(
                    error(
                        "KDR105",
                        f"run directory `{self.rundir.path}` holds a run of a different "
                        f"plan (hash {previous.plan_hash[:12]}, this plan {self.plan.hash[:12]})",
                        None,
                        Note(
                            kind="help",
                            message="resume with the same recipe and --set values, "
                            "or pass another --run-dir",
                        ),
                    )
                )
            self.state = previous
            self._verify_finished()
            self._restore()
        else:
            self.rundir.clear()
        self.rundir.write_text("plan.json", self.plan.to_json())

    def _verify_finished(self) -> None:
        """The manifest vouches for every finished pass's checkpoint: refuse to resume over a
        missing, truncated or edited one (KDR504 naming the file) rather than trust it or
        silently redo work; nothing in the run directory is touched."""
        for pass_id in self.state.finished:
            verify_checkpoint(self.rundir.checkpoint_path(pass_id))
        for rel in self.state.latest.values():
            verify_checkpoint(self.rundir.path / rel)

    def _restore(self) -> None:
        for name, rel in sorted(self.state.latest.items()):
            payload = load_checkpoint(self.rundir.path / rel)
            lineage = Lineage.from_plain(payload["model"])
            model = rebuild(lineage, self.data, payload["state_dict"])
            if self.plan.models[name].kind == "snapshot":
                model.eval()
                for p in model.parameters():
                    p.requires_grad_(False)
            self.store.set(name, model, lineage)

    # ---- passes ----------------------------------------------------------------------------
    def train_config(self, p: PlanPass, index: int) -> TrainConfig:
        settings = self.plan.settings
        opt = dict(settings["optimizer"])
        if "beta1" in opt or "beta2" in opt:  # the recipe names them; AdamW takes a pair
            opt["betas"] = (opt.pop("beta1", 0.9), opt.pop("beta2", 0.999))
        sched = dict(settings["schedule"])
        params = p.params
        distill = None
        if params.get("distill"):
            d = params["distill"]
            teacher = self.store.get(d["teacher"]).to(self.device).eval()
            distill = DistillConfig(teacher=teacher, temperature=d["temperature"], alpha=d["alpha"])
        return TrainConfig(
            epochs=params.get("epochs"),
            steps=params.get("steps"),
            optimizer=opt.pop("name"),
            optimizer_kwargs=opt,
            lr=params.get("lr"),
            schedule=sched.pop("name"),
            schedule_kwargs=sched,
            label_smoothing=params.get("label_smoothing") or 0.0,
            mixup=params.get("mixup"),
            cutmix=params.get("cutmix"),
            distill=distill,
            seed=pass_seed(self.plan, index),
            device=str(self.device),
            precision=str(settings.get("precision", "fp32")),
            compile=bool(settings.get("compile", False)),
            progress=self.options.progress,
            description=f"{p.op} {p.subject}",
        )

    def run_pass(self, p: PlanPass, index: int) -> dict[str, Any]:
        """Execute one pass; returns extra report fields."""
        if p.op in TRAINING_OPS:
            model = self.store.get(p.subject)
            stats = fit(model, self.data, self.train_config(p, index))
            return {
                "train": {
                    "loss_first": stats.loss_first,
                    "loss_last": stats.loss_last,
                    "steps": stats.steps,
                    "samples_per_s": stats.samples_per_s,
                }
            }
        if p.op == "snapshot":
            self.store.snapshot(p.subject, p.params["name"])
            return {}
        if p.op == "evaluate":
            return {}
        if p.op == "export":
            from runtime.export import export_model

            if not distributed.is_main():
                return {}

            try:
                path = export_model(
                    self.store.get(p.subject).cpu(),
                    p.params["format"],
                    p.params["path"],
                    self.example,
                )
            except OSError as exc:
                raise KdrError(
                    error(
                        "KDR504",
                        f"cannot write export `{p.params['path']}`: {exc.strerror or exc}",
                        None,
                        Note(
                            kind="help",
                            message="free some space or fix the path, then rerun with --resume",
                        ),
                    )
                ) from exc
            return {"export_path": str(path)}
        return self._graph_pass(p, index)

    def _graph_pass(self, p: PlanPass, index: int) -> dict[str, Any]:
        from runtime.passes import PassContext, run_pass

        seed_everything(pass_seed(self.plan, index))
        model = self.store.get(p.subject).cpu()
        generator = torch.Generator().manual_seed(pass_seed(self.plan, index))
        ctx = PassContext(
            example_inputs=self.example,
            batches=lambda: self.data.train_batches(generator),
            history=[h["op"] for h in self.store.lineages[p.subject].history],
            options={"seed": pass_seed(self.plan, index)},
        )
        result = run_pass(p.op, model, dict(p.params), ctx)
        self.store.set(p.subject, result.module)
        self.store.record(p.subject, p.op, result.record)
        return {"info": result.info} if result.info else {}

    # ---- measuring and checkpointing -------------------------------------------------------
    def measure(self, name: str) -> dict[str, Any]:
        model = self.store.get(name)
        model.eval()
        return measure(model.cpu(), self.data)

    def _entry(
        self,
        pass_id: str,
        op: str,
        model: str,
        wall: float,
        metrics: dict[str, Any],
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {"pass_id": pass_id, "op": op, "model": model}
        keys = ("accuracy", "params", "macs", "size_bytes", "latency_ms_b1", "latency_ms_b32")
        entry.update({k: metrics.get(k) for k in keys})
        entry["wall_s"] = round(wall, 3)
        entry.update({k: v for k, v in metrics.items() if k not in keys})
        entry.update(extra)
        return entry

    def checkpoint(self, p: PlanPass, name: str, entry: dict[str, Any]) -> None:
        path = self.rundir.checkpoint_path(p.id)
        model = self.store.get(name)
        try:
            save_checkpoint(
                path,
                {
                    "format": "kdr-checkpoint",
                    "version": 1,
                    "plan_hash": self.plan.hash,
                    "pass_id": p.id,
                    "model_name": name,
                    "model": self.store.lineages[name].to_plain(),
                    "state_dict": model.state_dict(),
                },
            )
        except OSError as exc:  # a full disk, a read-only mount, a vanished run directory
            raise KdrError(
                error(
                    "KDR504",
                    f"cannot write checkpoint `{path}`: {exc.strerror or exc}",
                    None,
                    Note(
                        kind="help",
                        message="free some space and rerun with --resume: the "
                        "passes finished before this one are kept",
                    ),
                )
            ) from exc
        self.state.latest[name] = str(path.relative_to(self.rundir.path))

    def execute(self) -> dict[str, Any]:
        started = time.perf_counter()
        if not self.state.stages:
            self.on_main(self._measure_inputs, "to measure the input models")
        done = set(self.state.finished)
        for index, p in enumerate(self.plan.passes):
            if p.id in done:
                continue
            self._say(f"[{index + 1}/{len(self.plan.passes)}] {p.op} {p.subject}")
            t0 = time.perf_counter()
            extra = self.run_pass(p, index)
            wall = time.perf_counter() - t0
            name = p.params["name"] if p.op == "snapshot" else p.subject
            if p.op not in READ_ONLY_OPS:
                distributed.check_agreement(self.store.get(name), f"pass {p.id}")
            self.on_main(
                functools.partial(self._finish, p, name, wall, extra),
                f"to checkpoint pass {p.id}",
            )
            if not distributed.is_main():
                self.state.finished.append(p.id)
        if not distributed.is_main():
            return {}
        from runtime.report import write_reports

        report = write_reports(
            self.rundir,
            self.plan,
            self.state.stages,
            str(self.device),
            time.perf_counter() - started,
        )
        return report

    def _measure_inputs(self) -> None:
        for name in input_models(self.plan):
            t0 = time.perf_counter()
            metrics = self.measure(name)
            self.state.stages.append(
                self._entry("input", "input", name, time.perf_counter() - t0, metrics, {})
            )
        self.rundir.write_state(self.state)

    def _finish(self, p: PlanPass, name: str, wall: float, extra: dict[str, Any]) -> None:
        """Measure, checkpoint and record a finished pass (rank 0 only)."""
        if p.op in READ_ONLY_OPS and p.op != "evaluate" and self._last(p.subject):
            # The model did not change: reuse its figures rather than re-time it.
            metrics = dict(self._last(p.subject) or {})
        else:
            metrics = self.measure(name)
        entry = self._entry(p.id, p.op, name, wall, metrics, extra)
        if distributed.is_distributed():
            entry["world_size"] = distributed.world_size()
        self.checkpoint(p, name, entry)
        self.state.stages.append(entry)
        self.state.finished.append(p.id)
        self.rundir.write_state(self.state)

    def _last(self, model: str) -> dict[str, Any] | None:
        keys = (
            "accuracy",
            "params",
            "macs",
            "size_bytes",
            "latency_ms_b1",
            "latency_ms_b32",
            "sparsity",
        )
        for entry in reversed(self.state.stages):
            if entry["model"] == model:
                return {k: entry.get(k) for k in keys}
        return None

    def _say(self, text: str) -> None:
        if not self.options.quiet:
            print(text, file=sys.stderr, flush=True)


def run_plan(plan: Plan, options: RunOptions) -> dict[str, Any]:
    """Run ``plan``; under torchrun, as one rank of a data-parallel run (``{}`` off rank 0)."""
    joined = distributed.init()
    try:
        executor = Executor(plan, options)
        executor.prepare()
        executor.open_rundir()
        try:
            return executor.execute()
        finally:
            executor.rundir.unlock()
    finally:
        if joined:
            distributed.shutdown()


def run_from_cli(args: argparse.Namespace) -> int:
    """The ``kdr run`` command (see ``kdr/cli.py``)."""
    from recipe_lang.diagnostics import render_all, summary
    from runtime.bindings import load_plan

    nproc, nnodes = getattr(args, "nproc_per_node", 1), getattr(args, "nnodes", "1")
    if distributed.wants_launch(nproc, nnodes):
        argv = getattr(args, "argv", None) or sys.argv[1:]
        return distributed.relaunch(argv, nproc, nnodes, getattr(args, "rdzv_endpoint", None))
    main_rank = int(os.environ.get("RANK", "0")) == 0
    plan, diagnostics, sources = load_plan(args)
    if not main_rank:  # the others print errors only: rank 0 shows the warnings
        diagnostics = [d for d in diagnostics if d.is_error]
    if diagnostics:
        print(render_all(diagnostics, sources), file=sys.stderr)
    if plan is None:
        print(summary(diagnostics), file=sys.stderr)
        return 1
    run_dir = Path(args.run_dir or plan.settings.get("run_dir") or Path("runs") / plan.recipe)
    quiet = args.quiet or not main_rank
    options = RunOptions(
        run_dir=run_dir,
        resume=args.resume,
        quiet=quiet,
        progress=sys.stderr.isatty() and not quiet,
    )
    try:
        report = run_plan(plan, options)
    except KdrError as exc:
        diags: list[Diagnostic] = [
            d.with_file(plan.source.path) if d.span is not None else d for d in exc.diagnostics
        ]
        print(render_all(diags, sources), file=sys.stderr)
        return 1
    if not quiet:
        from runtime.report import summary_table

        summary_table(report)
    return 0
