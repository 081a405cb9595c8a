"""``kdr run``: compile (and bind) the recipe, or read a plan JSON, then hand the runtime a
typed :class:`~runtime.run.RunRequest`. Under ``--nproc-per-node N`` it re-launches itself
through torchrun first."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from compiler.bind import Bindings
from compiler.driver import compile_file
from compiler.plan import Plan, PlanReadError
from recipe_lang.diagnostics import Diagnostic, KdrError, Note, error, render_all, summary


def load_plan(args: argparse.Namespace) -> tuple[Plan | None, list[Diagnostic], dict[str, str]]:
    """The plan to run, its diagnostics (warnings included) and the sources to render them."""
    path = Path(args.file)
    sources: dict[str, str] = {}
    if path.suffix != ".json":
        bindings = Bindings(student=args.student, data=args.data)
        result = compile_file(path, overrides=args.set, bindings=bindings)
        sources[result.file] = result.source
        return result.plan, list(result.diagnostics), sources
    where = str(path)
    try:
        plan = Plan.from_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, PlanReadError) as exc:
        return None, [error("KDR504", f"cannot read plan `{path}`: {exc}").with_file(where)], {}
    problems: list[Diagnostic] = []
    if plan.compute_hash() != plan.hash:
        problems.append(
            error(
                "KDR504",
                f"plan `{path}` was edited: its hash does not match its content",
                None,
                Note(kind="help", message="recompile it with `kdr compile`"),
            )
        )
    if args.set:
        problems.append(error("KDR105", "--set applies to recipes, not to compiled plans"))
    if args.student or args.data:
        problems.append(
            error(
                "KDR105",
                "--student and --data bind a recipe, not a compiled plan",
                None,
                Note(kind="help", message="bind when compiling: `kdr compile r.kdr --student ...`"),
            )
        )
    if problems:
        return None, [d.with_file(where) for d in problems], sources
    return plan, [], sources


def cmd_run(args: argparse.Namespace) -> int:
    from runtime import distributed
    from runtime.run import RunOptions, RunRequest, run

    nproc, nnodes = args.nproc_per_node, args.nnodes
    if distributed.wants_launch(nproc, nnodes):
        argv = getattr(args, "argv", None) or sys.argv[1:]
        return distributed.relaunch(argv, nproc, nnodes, args.rdzv_endpoint)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    plan, diagnostics, sources = load_plan(args)
    if not main_rank:  # the others print errors only: rank 0 shows the warnings
        diagnostics = [d for d in diagnostics if d.is_error]
    if diagnostics:
        print(render_all(diagnostics, sources), file=sys.stderr)
    if plan is None or any(d.is_error for d in diagnostics):
        print(summary(diagnostics), file=sys.stderr)
        return 1
    quiet = args.quiet or not main_rank
    run_dir = Path(args.run_dir) if args.run_dir else RunRequest.default_run_dir(plan)
    options = RunOptions(
        run_dir=run_dir,
        resume=args.resume,
        fresh=args.fresh,
        quiet=quiet,
        progress=not quiet,
        device=args.device,
        warn=lambda ds: print(
            render_all([d.with_file(plan.source.path) for d in ds], sources), file=sys.stderr
        ),
    )
    try:
        report = run(RunRequest(plan=plan, options=options))
    except KdrError as exc:
        # Raised at run time: spans (a pass's stage) point into the recipe the plan came from.
        diags = [d.with_file(plan.source.path) for d in exc.diagnostics]
        print(render_all(diags, sources), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if main_rank:
            print(interrupted(args, run_dir), file=sys.stderr, flush=True)
        return 130
    if not quiet:
        from runtime.report import summary_table

        summary_table(report)
        print(finished(run_dir), file=sys.stderr)
    return 0


def resume_command(argv: list[str], run_dir: Path) -> str:
    """The ``kdr run`` command line that resumes the run ``argv`` started in ``run_dir``."""
    args = [a for a in argv if a not in ("--fresh", "--resume")]
    if not any(a == "--run-dir" or a.startswith("--run-dir=") for a in args):
        args += ["--run-dir", str(run_dir)]
    return shlex.join(["kdr", *args, "--resume"])


def interrupted(args: argparse.Namespace, run_dir: Path) -> str:
    argv = list(getattr(args, "argv", None) or sys.argv[1:])
    return (
        f"kdr: interrupted; the finished passes are kept in `{run_dir}`\n"
        f"resume with: {resume_command(argv, run_dir)}"
    )


def finished(run_dir: Path) -> str:
    from runtime.workspace import REPORT_FILES

    reports = ", ".join(str(run_dir / name) for name in REPORT_FILES)
    return f"run directory: {run_dir}\nreports: {reports}"
