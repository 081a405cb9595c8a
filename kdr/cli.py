"""The ``kdr`` command line: check, compile, run, fmt, explain.

``check``, ``compile``, ``fmt`` and ``explain`` never import torch nor user code; ``run`` and
``check --models`` do, lazily. No input may produce a traceback: user mistakes are diagnostics,
anything else is reported as KDR999.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from recipe_lang.diagnostics import (
    Diagnostic,
    KdrError,
    internal_error,
    render_all,
    summary,
    to_json,
)

if TYPE_CHECKING:
    from compiler.bind import Bindings

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def _print_diagnostics(
    diagnostics: Sequence[Diagnostic], sources: dict[str, str], as_json: bool
) -> None:
    if as_json:
        print(to_json(diagnostics))
        return
    if diagnostics:
        print(render_all(diagnostics, sources), file=sys.stderr)
        print(summary(list(diagnostics)), file=sys.stderr)


def _exit_code(diagnostics: Sequence[Diagnostic]) -> int:
    return EXIT_ERRORS if any(d.is_error for d in diagnostics) else EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from compiler.driver import compile_file

    all_diags: list[Diagnostic] = []
    sources: dict[str, str] = {}
    bindings = _bindings(args)
    for file in args.files:
        result = compile_file(file, overrides=args.set, bindings=bindings)
        sources[result.file] = result.source
        diags = list(result.diagnostics)
        if args.models and result.plan is not None and not result.has_errors:
            from runtime.run import check_plan

            report = check_plan(result.plan)
            diags += report.diagnostics
            if not args.json and report.estimates:
                print(report.table(), file=sys.stderr)
        all_diags += diags
    all_diags.sort(key=Diagnostic.sort_key)
    _print_diagnostics(all_diags, sources, args.json)
    return _exit_code(all_diags)


def cmd_compile(args: argparse.Namespace) -> int:
    from compiler.driver import compile_file
    from compiler.plan_format import plan_to_dot, plan_to_text

    result = compile_file(args.file, overrides=args.set, bindings=_bindings(args))
    _print_diagnostics(
        [d for d in result.diagnostics if d.is_error or not args.quiet],
        {result.file: result.source},
        False,
    )
    if result.plan is None or result.has_errors:
        return EXIT_ERRORS
    if args.format == "json":
        text = result.plan.to_json()
    elif args.format == "text":
        text = plan_to_text(result.plan)
    else:
        text = plan_to_dot(result.plan)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_fmt(args: argparse.Namespace) -> int:
    from recipe_lang.parser import parse_file
    from recipe_lang.printer import format_recipe

    status = EXIT_OK
    for file in args.files:
        result = parse_file(file)
        if result.recipe is None or not result.ok:
            _print_diagnostics(result.diagnostics, {result.file: result.source}, False)
            status = EXIT_ERRORS
            continue
        formatted = format_recipe(result.recipe)
        if formatted == result.source:
            continue
        if args.check:
            print(f"{file}: would be reformatted", file=sys.stderr)
            status = EXIT_ERRORS
        else:
            Path(file).write_text(formatted, encoding="utf-8")
            print(f"{file}: reformatted", file=sys.stderr)
    return status


def cmd_explain(args: argparse.Namespace) -> int:
    from compiler.catalogue import CATALOGUE, explain

    text = explain(args.code)
    if text is None:
        print(
            f"kdr explain: unknown code `{args.code}`; known codes: {', '.join(CATALOGUE)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    sys.stdout.write(text)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from kdr.run_command import cmd_run as run_command

    return run_command(args)


def _bindings(args: argparse.Namespace) -> Bindings:
    from compiler.bind import Bindings

    return Bindings(student=args.student, data=args.data)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kdr")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kdr", description="Recipes for smaller, faster models.")
    p.add_argument("--version", action="version", version=f"kdr {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    def add_set(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="K=V",
            help="override a `param` of the recipe",
        )

    def add_bindings(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--student", help='bind the student a template recipe leaves open, e.g. "resnet18()"'
        )
        sp.add_argument(
            "--data", help="bind (or replace) the recipe's data, e.g. \"cifar10(root='~/data')\""
        )

    c = sub.add_parser("check", help="report every diagnostic of the recipes")
    c.add_argument("files", nargs="+", metavar="FILE", help="recipes (.kdr) to check")
    c.add_argument("--json", action="store_true", help="print diagnostics as JSON")
    c.add_argument(
        "--models",
        action="store_true",
        help="also build and trace the models and dry-run the graph passes",
    )
    add_set(c)
    add_bindings(c)
    c.set_defaults(func=cmd_check)

    co = sub.add_parser("compile", help="print the plan")
    co.add_argument("file", metavar="FILE", help="the recipe (.kdr) to compile")
    co.add_argument("-o", "--output", metavar="OUT", help="write the plan here (default: stdout)")
    co.add_argument(
        "--format",
        choices=["json", "text", "dot"],
        default="json",
        help="json (the plan document), text (a table) or dot (Graphviz); default json",
    )
    co.add_argument("--quiet", action="store_true", help="hide warnings and notes")
    add_set(co)
    add_bindings(co)
    co.set_defaults(func=cmd_compile)

    r = sub.add_parser("run", help="execute a recipe or a plan")
    r.add_argument("file", metavar="FILE", help="a recipe (.kdr) or a compiled plan (.json)")
    add_set(r)
    add_bindings(r)
    r.add_argument(
        "--run-dir",
        metavar="DIR",
        help="where checkpoints, reports and relative exports go (default: runs/<recipe>/)",
    )
    again = r.add_mutually_exclusive_group()
    again.add_argument(
        "--resume", action="store_true", help="continue a run after its last finished pass"
    )
    again.add_argument(
        "--fresh",
        action="store_true",
        help="start over: move the run directory's previous run to <run-dir>.old-<timestamp>",
    )
    r.add_argument(
        "--nproc-per-node",
        type=int,
        default=1,
        help="train data-parallel on N processes per node (re-launches through torchrun)",
    )
    r.add_argument("--nnodes", default="1", help="nodes of a multi-node run (torchrun --nnodes)")
    r.add_argument(
        "--rdzv-endpoint",
        help="HOST:PORT every node of a multi-node run meets at (torchrun --rdzv-endpoint)",
    )
    r.add_argument(
        "--device", help="override `set device`: auto, cpu, cuda or cuda:N (default: the recipe's)"
    )
    r.add_argument("--quiet", action="store_true", help="print errors only")
    r.set_defaults(func=cmd_run)

    f = sub.add_parser("fmt", help="format recipes canonically")
    f.add_argument("files", nargs="+", metavar="FILE", help="recipes (.kdr) to format in place")
    f.add_argument("--check", action="store_true", help="exit 1 if a file would change")
    f.set_defaults(func=cmd_fmt)

    e = sub.add_parser("explain", help="explain a diagnostic code")
    e.add_argument("code", metavar="CODE", help="a diagnostic code, e.g. KDR204")
    e.set_defaults(func=cmd_explain)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `kdr run` re-launches with it
    try:
        return int(args.func(args))
    except KdrError as exc:
        _print_diagnostics(exc.diagnostics, {}, getattr(args, "json", False))
        return EXIT_ERRORS
    except KeyboardInterrupt:
        print("kdr: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback: report it as KDR999
        _print_diagnostics([internal_error(exc)], {}, getattr(args, "json", False))
        return EXIT_ERRORS


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
