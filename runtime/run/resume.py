"""The run directory's life: open (lock, clear or verify), restore on resume, checkpoint."""

from __future__ import annotations

from typing import Any

from compiler.plan import PlanPass
from recipe_lang.diagnostics import KdrError, Note, error
from runtime.checkpoint import load_checkpoint, save_checkpoint, verify_checkpoint
from runtime.modelstore import Lineage, rebuild
from runtime.run.context import RunContext


def open_rundir(ctx: RunContext) -> None:
    """Lock the run directory; on ``--resume`` verify and restore it, else start it afresh."""
    rundir, plan = ctx.rundir, ctx.plan
    rundir.check_usable()
    rundir.create()
    rundir.lock()
    previous = rundir.read_state()
    if ctx.options.resume and previous is not None:
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
                        "or pass another --run-dir",
                    ),
                )
            )
        ctx.state = previous
        verify_finished(ctx)
        restore(ctx)
    else:
        rundir.clear()
    rundir.write_text("plan.json", plan.to_json())


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
