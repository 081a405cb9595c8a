"""Docs and benchmarks that cannot drift.

- Every figure the docs quote from a benchmark carries a marker
  (``<!-- fig:FILE:EXPR:FORMAT -->VALUE``, see ``bench/doc_figures.py``) and equals what
  ``bench/results/FILE.json`` says; inside ``<!-- figures -->`` regions no measurement-looking
  number goes unmarked; code constants quoted in the docs (``<!-- const:... -->``) and quoted
  recipes (``# NAME.kdr: ...`` blocks) match the code and ``recipes/``.
- Every bench writes through ``bench/_results.py``: a ``--quick`` run never overwrites the full
  run's file, and a failing command stops the bench instead of being timed.

After re-running a benchmark, ``python bench/doc_figures.py --fix`` rewrites the quoted values.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench/ is not an installed package

from bench import _results, doc_figures  # noqa: E402
from bench._results import (  # noqa: E402
    BenchFailure,
    check_exit,
    results_path,
    run_checked,
    timed_run,
)

BENCH = ROOT / "bench"
#: bench/*.py that are not benchmarks writing results: the shared helpers and the doc checker
#: (which reads results and rewrites docs). fuzz.py has its own owner and output (fuzz.json,
#: finding files) and no --quick mode.
NOT_BENCHES = {"__init__.py", "_results.py", "doc_figures.py", "fuzz.py"}
BENCHES = sorted(p for p in BENCH.glob("*.py") if p.name not in NOT_BENCHES)
#: file writes a bench may make outside ``write_results`` (script name -> call), with the reason
ALLOWED_WRITES = {("ddp.py", "recipe.write_text")}  # the recipe, in a temporary directory
WRITE_CALLS = {"write_text", "write_bytes", "dump", "save", "savefig", "open", "mkdir"}


def _const(name: str) -> object:
    """A compiler constant, wherever the compiler keeps it (it is moving out of stages.py)."""
    return doc_figures._const_root(name)


# -- figures --------------------------------------------------------------------------------


def test_every_quoted_figure_matches_its_source() -> None:
    bad = [f.describe() for path in doc_figures.DOCS for f in doc_figures.figures(path) if not f.ok]
    assert not bad, "stale figures (python bench/doc_figures.py --fix):\n" + "\n".join(bad)


def test_the_docs_quote_every_benchmark_through_markers() -> None:
    """Guards against a checker that silently finds nothing."""
    used = {
        f.marker.split(":")[1]
        for path in doc_figures.DOCS
        for f in doc_figures.figures(path)
        if f.marker.startswith("fig:")
    }
    assert {
        "orthogonality",
        "orthogonality_quick",
        "prune",
        "quant",
        "fuzz",
        "ddp",
        "kd_gain",
    } <= used
    assert sum(1 for p in doc_figures.DOCS for _ in doc_figures.figures(p)) > 100


def test_no_unmarked_figure_in_a_figures_region() -> None:
    bad = [msg for path in doc_figures.DOCS for msg in doc_figures.unmarked(path)]
    assert not bad, "\n".join(bad)


def test_quoted_recipes_match_the_shipped_ones() -> None:
    bad = [msg for path in doc_figures.DOCS for msg in doc_figures.recipe_blocks(path)]
    assert not bad, "\n".join(bad)
    quickstart = (ROOT / "recipes" / "quickstart.kdr").read_text(encoding="utf-8")
    for doc in ("README.md", "docs/language.md"):
        assert quickstart in (ROOT / doc).read_text(encoding="utf-8"), doc


def test_unroll_cap_quoted_in_the_docs_is_the_compilers() -> None:
    cap = _const("MAX_STEPS")
    assert isinstance(cap, int)
    for doc in ("docs/language.md", "docs/security.md"):
        assert f"<!-- const:MAX_STEPS:, -->{cap:,} stage" in (ROOT / doc).read_text(), doc


def test_pruned_structures_equal_torch_prunings_as_docs_say() -> None:
    """docs/pruning.md: params and MACs equal Torch-Pruning's for every benchmarked model."""
    models = doc_figures._load(_results.RESULTS_DIR / "prune.json")["models"]
    assert set(models) == {"resnet18", "resnet50", "mobilenet_v2"}
    for name, row in models.items():
        assert (row["kdr_params"], row["kdr_macs"]) == (row["tp_params"], row["tp_macs"]), name


def test_checker_catches_drift_unmarked_figures_and_fixes(tmp_path: Path) -> None:
    speedup = doc_figures.expected_value("fig", "quant:resnet18_static_per_channel.speedup_b32:.2f")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "<!-- figures -->\n"
        "int8 is <!-- fig:quant:resnet18_static_per_channel.speedup_b32:.2f -->9.99x faster,\n"
        "a gain of <!-- fig:orthogonality:rows.plain.kd_gain*100:+.2f -->−0.01 points;\n"
        "an unmarked 1.23 and 45%, a setting `lr 0.002`, a name resnet18, a year 2020.\n"
        "<!-- /figures -->\n"
        "outside a region 6.78 is not checked; <!-- fig:quant:nope.speedup_b1:.2f -->1.00\n",
        encoding="utf-8",
    )
    found = list(doc_figures.figures(doc))
    assert [f.ok for f in found] == [False, False, False]
    assert found[0].expected == speedup and found[0].quoted == "9.99"
    assert found[2].expected is None and "nope" in found[2].error
    unmarked = doc_figures.unmarked(doc)
    assert [m.split("'")[1] for m in unmarked] == ["1.23", "45%"]
    assert doc_figures.fix(doc) == 2
    text = doc.read_text(encoding="utf-8")
    assert f"-->{speedup}x faster" in text
    assert "-->+1.35 points" in text
    assert [f.ok for f in doc_figures.figures(doc)] == [True, True, False]


def test_marker_expressions() -> None:
    data = {"rows": [{"name": "a", "x": 0.5}, {"name": "b", "x": 0.25}], "k": {"1 2": 3}}

    def ev(expr: str) -> object:
        return doc_figures.evaluate(expr, lambda name: doc_figures._lookup(data, name))

    assert ev("rows.b.x") == 0.25
    assert ev("rows[0].x") == 0.5
    assert ev("(rows.a.x - rows.b.x) * 100") == 25
    assert ev('k["1 2"] / 3') == 1
    assert ev("len(rows)") == 2
    with pytest.raises(KeyError):
        ev("rows.c.x")
    with pytest.raises(ValueError):
        ev("__import__('os')")


# -- results files ----------------------------------------------------------------------------


@pytest.mark.parametrize("bench", [p.stem for p in BENCHES])
def test_quick_and_full_results_go_to_different_files(bench: str, tmp_path: Path) -> None:
    name = {"prune_vs_torch_pruning": "prune"}.get(bench, bench)
    full, quick = results_path(name, False), results_path(name, True)
    assert full != quick
    assert full == _results.RESULTS_DIR / f"{name}.json"
    assert quick.name == f"{name}_quick.json"
    assert results_path(name, True, tmp_path, ".md") == tmp_path / f"{name}_quick.md"


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


@pytest.mark.parametrize("script", BENCHES, ids=lambda p: p.name)
def test_benches_write_results_only_through_the_helper(script: Path) -> None:
    """The heuristic: the bench imports ``bench._results``, every ``write_results`` call passes
    ``args.quick``, no string outside a docstring names the results directory, no other call
    writes a file (except ``ALLOWED_WRITES``), and no bench runs a subprocess by itself."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "bench._results"
        for alias in node.names
    }
    assert "write_results" in imported, f"{script.name} does not write through bench._results"
    modules = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert "subprocess" not in modules, "use bench._results.run_checked / timed_run"
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            assert "results" not in node.value.replace("\\", "/").split("/"), (
                f"{script.name}:{node.lineno} names the results directory: {node.value!r}"
            )
    writes = []
    for call in _calls(tree):
        func = ast.unparse(call.func)
        if func == "write_results":
            assert len(call.args) >= 2 and ast.unparse(call.args[1]) == "args.quick", (
                f"{script.name}:{call.lineno}: write_results must get args.quick"
            )
        elif func.split(".")[-1] in WRITE_CALLS and (script.name, func) not in ALLOWED_WRITES:
            writes.append(f"{script.name}:{call.lineno}: {func}(...)")
    assert not writes, "writes outside bench._results.write_results:\n" + "\n".join(writes)
    assert '"--quick"' in script.read_text(encoding="utf-8"), f"{script.name} has no --quick"


# -- failing commands ------------------------------------------------------------------------


def test_a_failing_command_stops_the_bench() -> None:
    fail = [sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"]
    with pytest.raises(BenchFailure) as info:
        run_checked(fail)
    assert "exit status 3" in info.value.message and "boom" in info.value.message
    assert isinstance(info.value, SystemExit)
    with pytest.raises(BenchFailure):
        timed_run(fail)
    with pytest.raises(BenchFailure):
        run_checked(["/nonexistent/kdr-bench-command"])
    assert timed_run([sys.executable, "-c", "pass"]) > 0
    assert run_checked([sys.executable, "-c", "print('ok')"]).stdout == "ok\n"
    check_exit(0, "kdr run"), check_exit(None, "kdr run")
    with pytest.raises(BenchFailure):
        check_exit(1, "kdr run", "error[KDR100]")


def test_an_uncaught_bench_failure_exits_non_zero() -> None:
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from bench._results import timed_run;"
        "timed_run([sys.executable, '-c', 'raise SystemExit(3)'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(ROOT)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "failed with exit status 3" in done.stderr
    assert "Traceback" not in done.stderr
