"""The run directory's life: open (lock; refuse, move aside, clear or verify), restore on
resume, checkpoint."""

from __future__ import annotations

from typing import Any

from compiler.plan import PlanPass
from recipe_lang.diagnostics import KdrError, Note, error
from runtime.checkpoint import load_checkpoint, save_checkpoint, sidecar, verify_checkpoint
from runtime.modelstore import Lineage, rebuild
from runtime.run.console import resume_line, say
from runtime.run.context import RunContext
from runtime.workspace import RunState


def open_rundir(ctx: RunContext) -> None:
    """Lock the run directory; on ``--resume`` verify and restore it, on ``--fresh`` move the
    previous run aside, else start afresh, refusing to throw finished passes away."""
    rundir, plan, options = ctx.rundir, ctx.plan, ctx.options
    rundir.check_usable()
    rundir.create()
    rundir.lock()
    if options.fresh and rundir.is_run_dir():
        aside = rundir.move_aside()
        say(options, f"fresh run: the previous run was moved to `{aside}`")
        rundir.create()
        rundir.lock()
    previous = rundir.read_state()
    if previous is not None and previous.finished and not options.resume:
        raise _finished_work(ctx, previous)
    if options.resume and previous is not None:
        if previous.plan_hash != plan.hash:
            raise KdrError(
                error(
                    "KDR105",
                    f"run directory `{rundir.path}` holds a run of a different "
                    f"plan (hash {previous.plan_hash[:12]}, this plan {plan.hash[:12]})",
                    None,
                    Note(
                        kind="help",
                        message="resume with the same recipe and --set values, "
                        "start over with --fresh, or pass another --run-dir",
                    ),
                )
            )
        ctx.state = previous
        verify_finished(ctx)
        restore(ctx)
        if previous.finished:
            say(options, resume_line(previous.finished, len(plan.passes)))
    else:
        rundir.clear()
    rundir.write_text("plan.json", plan.to_json())


def _finished_work(ctx: RunContext, previous: RunState) -> KdrError:
    """A rerun without ``--resume`` over finished passes: refused, every file left in place."""
    path, done = ctx.rundir.path, previous.finished
    names = done[0] if len(done) == 1 else f"{done[0]} ... {done[-1]}"
    notes = []
    if previous.plan_hash != ctx.plan.hash:
        notes.append(
            Note(message="it is a run of a different plan: `--resume` would refuse it too")
        )
    notes.append(
        Note(
            kind="help",
            message=f"use `--resume` to continue or `--fresh` to start over (which moves the "
            f"old run to `{path}.old-<timestamp>`), or pass another --run-dir",
        )
    )
    return KdrError(
        error(
            "KDR105",
            f"run directory `{path}` holds {len(done)} finished "
            f"pass{'es' * (len(done) != 1)} ({names})",
            None,
            *notes,
        )
    )


def verify_finished(ctx: RunContext) -> None:
    """The manifest vouches for every finished pass's checkpoint: refuse to resume over a
    missing, truncated or edited one (KDR504 naming the file) rather than trust it or
    silently redo work; nothing in the run directory is touched."""
    for pass_id in ctx.state.finished:
        verify_checkpoint(ctx.rundir.checkpoint_path(pass_id))
    for rel in ctx.state.latest.values():
        verify_checkpoint(ctx.rundir.path / rel)


def restore(ctx: RunContext) -> None:
    """Load every model's latest checkpoint (structure replayed from its lineage)."""
    for name, rel in sorted(ctx.state.latest.items()):
        payload = load_checkpoint(ctx.rundir.path / rel)
        lineage = Lineage.from_plain(payload["model"])
        model = rebuild(lineage, ctx.data, payload["state_dict"])
        if ctx.plan.models[name].kind == "snapshot":
            model.eval()
            for p in model.parameters():
                p.requires_grad_(False)
        ctx.store.set(name, model, lineage)


def checkpoint(ctx: RunContext, p: PlanPass, name: str) -> None:
    """Write ``name`` after pass ``p`` atomically and make it the model's latest version."""
    path = ctx.rundir.checkpoint_path(p.id)
    model = ctx.store.get(name)
    payload: dict[str, Any] = {
        "format": "kdr-checkpoint",
        "version": 1,
        "plan_hash": ctx.plan.hash,
        "pass_id": p.id,
        "model_name": name,
        "model": ctx.store.lineages[name].to_plain(),
        "state_dict": model.state_dict(),
    }
    try:
        save_checkpoint(path, payload)
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
    ctx.state.latest[name] = str(path.relative_to(ctx.rundir.path))
    partial = ctx.rundir.partial_path(p.id)  # the pass is done: its inner checkpoint is not
    partial.unlink(missing_ok=True)
    sidecar(partial).unlink(missing_ok=True)
