"""The threat model of docs/security.md, claim by claim: what a recipe can make kdr do.

1. ``check``/``compile``/``fmt``/``explain`` import neither torch nor user code; factories are
   imported by ``run`` and ``check --models`` only.
2. Weights and checkpoints load with ``torch.load(weights_only=True)`` only: a malicious pickle
   is refused with KDR504 and its code never runs.
3. ``export`` writes where the recipe says (parents created); a run writes nothing else outside
   its run directory.
4. No network access unless pretrained weights are asked for; offline that is a diagnostic.
5. ``kdr run`` refuses an edited plan (KDR504).
6. Malformed recipes give diagnostics, never a traceback.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
import os
import pickle
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Run kdr's CLI in a fresh interpreter and list which forbidden modules ended up imported.
PROBE = (
    "import sys, runpy\n"
    "sys.argv = ['kdr', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('kdr', run_name='__main__')\n"
    "except SystemExit as e:\n"
    "    code = e.code\n"
    "else:\n"
    "    code = 0\n"
    "roots = ('torch', 'torchvision', {user!r})\n"
    "bad = sorted(m for m in sys.modules if m.split('.')[0] in roots)\n"
    "print('IMPORTED', bad, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def kdr_subprocess(
    args: list[str], *, extra_path: Path | None = None, cwd: Path = ROOT, module: str = ""
) -> subprocess.CompletedProcess[str]:
    path = [str(ROOT)] + ([str(extra_path)] if extra_path else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(user=module or "-"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_kdr(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``kdr.cli.main`` in process; returns (exit code, stderr)."""
    from kdr.cli import main

    code = main(argv)
    return code, capsys.readouterr().err


def evil_module(folder: Path, marker: Path) -> str:
    """A model factory module that writes ``marker`` when imported; returns its unique name."""
    name = f"kdr_evil_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\n"
        "from runtime.models import convnet\n"
        "def build(*, in_channels=3, num_classes=10):\n"
        "    return convnet(width=4, in_channels=in_channels, num_classes=num_classes)\n"
    )
    return name


TINY_DATA = "data = mnist10k(limit=64, eval_limit=64)\n"


# ---- 1. no torch, no user code in check / compile / fmt / explain ---------------------------


def test_front_end_commands_never_import_torch_or_factories(tmp_path: Path) -> None:
    marker = tmp_path / "imported.txt"
    lib = tmp_path / "lib"
    lib.mkdir()
    name = evil_module(lib, marker)
    recipe = tmp_path / "r.kdr"
    recipe.write_text(
        f'{TINY_DATA}model student = "{name}:build"()\n'
        f'model teacher = "{name}:build"() from "t.pt"\n'
        "distill student from teacher for 1 step\n"
        f'then distill student from "{name}:build"(weights="w.pt") for 1 step\n'
        "then evaluate student\n"
    )
    for args in (
        ["check", "--json", str(recipe)],
        ["compile", str(recipe), "--format", "dot"],
        ["fmt", "--check", str(recipe)],
        ["explain", "KDR504"],
    ):
        proc = kdr_subprocess(args, extra_path=lib, cwd=tmp_path, module=name)
        assert "Traceback" not in proc.stderr, proc.stderr
        assert "IMPORTED []" in proc.stderr, (args, proc.stderr)
        assert proc.returncode in (0, 1), (args, proc.stderr)
    assert not marker.exists()
    # The marker is live: importing the module does write it (in process: a fresh interpreter
    # would spend seconds importing torch for the module's own `from runtime.models import`).
    sys.path.insert(0, str(lib))
    try:
        importlib.import_module(name)
    finally:
        sys.path.remove(str(lib))
        sys.modules.pop(name, None)
    assert marker.exists()


@pytest.fixture
def evil_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    marker = tmp_path / "imported.txt"
    lib = tmp_path / "lib"
    lib.mkdir()
    name = evil_module(lib, marker)
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.chdir(tmp_path)
    yield name, marker
    sys.modules.pop(name, None)


def test_check_models_imports_factories(
    evil_factory: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The boundary: `check --models` builds the models, so it runs the factory's module."""
    name, marker = evil_factory
    Path("r.kdr").write_text(f'{TINY_DATA}model student = "{name}:build"()\nevaluate student\n')
    code, err = run_kdr(["check", "--models", "r.kdr"], capsys)
    assert code == 0, err
    assert marker.exists()


@pytest.mark.slow
def test_run_imports_factories(
    evil_factory: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The boundary: `kdr run` imports user code named by the recipe (that is what it is for)."""
    name, marker = evil_factory
    Path("r.kdr").write_text(f'{TINY_DATA}model student = "{name}:build"()\nevaluate student\n')
    code, err = run_kdr(["run", "r.kdr", "--run-dir", "rd", "--quiet"], capsys)
    assert code == 0, err
    assert marker.exists()


# ---- 2. weights_only loads -------------------------------------------------------------------


class _Payload:
    """Unpickling this opens (creates) the marker file: code execution, if it is ever loaded."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_malicious_pickle_weights_are_refused(
    writer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned.txt"
    payload = {"0.0.weight": _Payload(marker)}
    if writer == "torch.save":
        torch.save(payload, tmp_path / "evil.pt")
    else:  # a legacy, non-zip pickle file
        (tmp_path / "evil.pt").write_bytes(pickle.dumps(payload, protocol=2))
    # The file really is a loaded gun: unpickling it without weights_only creates the marker
    # (the legacy loader then fails on the magic number, after the code has run).
    with contextlib.suppress(RuntimeError):
        torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()
    marker.unlink()

    Path("r.kdr").write_text(
        f'{TINY_DATA}model student = convnet(width=4) from "evil.pt"\nevaluate student\n'
    )
    code, err = run_kdr(["run", "r.kdr", "--run-dir", str(tmp_path / "rd"), "--quiet"], capsys)
    assert code == 1
    assert "error[KDR504]" in err and "weights-only" in err, err
    assert "Traceback" not in err
    assert not marker.exists()
    assert not (tmp_path / "rd").exists()  # refused while building models, before the run dir


def _torch_load_calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "load":
            base = func.value
            names = []
            while isinstance(base, ast.Attribute):
                names.append(base.attr)
                base = base.value
            if (
                isinstance(base, ast.Name)
                and base.id == "torch"
                and names in ([], ["serialization"])
            ):
                yield node


def test_every_torch_load_in_runtime_is_weights_only() -> None:
    calls = 0
    for path in sorted((ROOT / "runtime").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            # `from torch import load` (or serialization's) would hide a call from the check below.
            if isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.serialization"):
                assert "load" not in {a.name for a in node.names}, f"{path}: imports torch.load"
            # No pickle-family loader anywhere in the runtime.
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                mods.append(getattr(node, "module", None) or "")
                assert not {"pickle", "dill", "cloudpickle", "joblib"} & {
                    m.split(".")[0] for m in mods
                }, f"{path}:{node.lineno} imports a pickle loader"
        for call in _torch_load_calls(tree):
            calls += 1
            kw = {k.arg: k.value for k in call.keywords}
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            assert "weights_only" in kw, f"{where}: torch.load without weights_only"
            value = kw["weights_only"]
            assert isinstance(value, ast.Constant) and value.value is True, where
    assert calls >= 1  # the check is live: runtime/checkpoint.py loads with torch.load


def test_torchscript_and_pt2_loaders_are_not_used_by_run() -> None:
    """`torch.jit.load` / `torch.export.load` (which can run serialized code) exist only in
    ``runtime.export.load_exported``, a helper for tests and users; nothing in kdr calls it."""
    users = []
    for path in sorted((ROOT / "runtime").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Attribute) and node.attr == "load":
                inner = node.value
                if isinstance(inner, ast.Attribute) and inner.attr in ("jit", "export"):
                    users.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Name) and node.id == "load_exported":
                users.append(f"call {path.name}:{node.lineno}")
    assert all(u.startswith("export.py:") for u in users), users
    for path in [*ROOT.joinpath("kdr").rglob("*.py"), *ROOT.joinpath("compiler").rglob("*.py")]:
        assert "load_exported" not in path.read_text(encoding="utf-8"), path


# ---- 3 + 4. files written, and no network ----------------------------------------------------


def _refuse_connect(self: socket.socket, *args: object) -> None:
    raise ConnectionRefusedError("network disabled by test_security")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The tiny recipe run once, in a fresh working directory, with every socket refused."""
    import io

    from kdr.cli import main

    cwd = tmp_path_factory.mktemp("tiny_run")
    (cwd / "r.kdr").write_text(
        f"{TINY_DATA}model student = convnet(width=4)\n"
        'train student for 1 step\nthen export student checkpoint "out/s.pt"\n'
    )
    before = {p for p in cwd.rglob("*")}
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        mp.setattr(socket.socket, "connect", _refuse_connect)
        mp.setattr(socket.socket, "connect_ex", _refuse_connect)
        mp.setattr(socket, "create_connection", _refuse_connect)
        with contextlib.redirect_stderr(err):
            code = main(["run", "r.kdr", "--run-dir", "rd", "--quiet"])
    created = sorted(str(p.relative_to(cwd)) for p in set(cwd.rglob("*")) - before if p.is_file())
    return {"code": code, "stderr": err.getvalue(), "created": created, "cwd": cwd}


@pytest.mark.slow
def test_run_needs_no_network(tiny_run: dict[str, object]) -> None:
    assert tiny_run["code"] == 0, tiny_run["stderr"]


@pytest.mark.slow
def test_run_writes_only_run_dir_and_export_path(tiny_run: dict[str, object]) -> None:
    assert tiny_run["code"] == 0, tiny_run["stderr"]
    created = tiny_run["created"]
    assert isinstance(created, list)
    outside = [f for f in created if not f.startswith("rd/")]
    assert outside == [], created  # a relative export path lands in the run directory
    inside = {f for f in created if f.startswith("rd/")}
    assert {"rd/plan.json", "rd/state.json", "rd/report.json", "rd/report.md"} <= inside
    # The export, created with its parent directory, and its integrity sidecar.
    assert {"rd/out/s.pt", "rd/out/s.pt.sha256"} <= inside
    allowed = ("rd/checkpoints/", "rd/plan.json", "rd/state.json", "rd/report.", "rd/.lock")
    allowed += ("rd/out/s.pt",)
    assert all(f.startswith(allowed) for f in inside), sorted(inside)


def test_pretrained_weights_offline_is_a_diagnostic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`weights=` fetches from the internet through torchvision; offline that is KDR504."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # an empty weights cache
    monkeypatch.setattr(socket.socket, "connect", _refuse_connect)
    monkeypatch.setattr(socket, "create_connection", _refuse_connect)
    Path("r.kdr").write_text(
        f'{TINY_DATA}model teacher = resnet18(weights="DEFAULT")\n'
        "model student = convnet(width=4)\n"
        "distill student from teacher for 1 step\n"
    )
    code, err = run_kdr(["run", "r.kdr", "--run-dir", "rd", "--quiet"], capsys)
    assert code == 1
    assert "error[KDR504]" in err or "error[KDR501]" in err, err
    assert "Traceback" not in err
    assert not Path("rd", "checkpoints").exists() or not any(Path("rd", "checkpoints").iterdir())


# ---- 5. plans are hashed ---------------------------------------------------------------------


def test_edited_plan_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("r.kdr").write_text(
        f"{TINY_DATA}model student = convnet(width=4)\ntrain student for 1 step\n"
    )
    code, err = run_kdr(["compile", "r.kdr", "-o", "plan.json"], capsys)
    assert code == 0, err
    plan = json.loads(Path("plan.json").read_text())
    plan["models"]["student"]["kwargs"]["width"] = 64
    Path("edited.json").write_text(json.dumps(plan, indent=2))
    code, err = run_kdr(["run", "edited.json", "--run-dir", "rd", "--quiet"], capsys)
    assert code == 1
    assert "error[KDR504]" in err and "was edited" in err, err
    assert "Traceback" not in err
    assert not Path("rd").exists()


# ---- 6. no tracebacks ------------------------------------------------------------------------

MALFORMED = [
    "then evaluate",
    "\x00\x01\x02",
    "train for",
    "train for 3 epochs then",
    "model = convnet()",
    "model train = convnet()\ntrain train for 1 epoch",
    'data = mnist10k(\nmodel student = convnet(width="4"',
    "prune 150% then prune 0% then prune -5%",
    "quantize int3 qat calibrate 0 batches",
    "distill student from student for 1 epoch",
    "repeat 0 { }",
    "repeat 2 { evaluate",
    "}}}} {{{{",
    'export student onnx "unterminated',
    "set device = cuda:x\nset optimizer = sgd(lr=$missing)",
    "param p = 1\nparam p = 2\ntrain for $p epochs with mixup 0, cutmix -1, lr 1e309",
    "repeat 1 { " * 3000 + "evaluate" + " }" * 3000,
    "data = mnist10k(" + "f(" * 2000 + ")" * 2000 + ")",
    "é中🙂\u2028\ufeff train ﬁ for １ epoch",
    "model " + "n" * 100_000 + " = convnet()\ntrain " + "m" * 100_000 + " for 1 epoch",
]


def test_malformed_recipes_give_diagnostics_not_tracebacks(tmp_path: Path) -> None:
    files = []
    for i, text in enumerate(MALFORMED):
        path = tmp_path / f"bad{i:02d}.kdr"
        path.write_text(text, encoding="utf-8")
        files.append(str(path))
    (tmp_path / "latin1.kdr").write_bytes(b"train for 3 epochs # caf\xe9\n")
    files += [str(tmp_path / "latin1.kdr"), str(tmp_path / "missing.kdr"), str(tmp_path)]
    for args in (["check", *files], ["check", "--json", *files]):
        proc = kdr_subprocess(args, cwd=tmp_path)
        assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
        assert "KDR999" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
        assert proc.returncode == 1
        if "--json" in args:  # every file reports at least one error of its own
            reported = {d["file"] for d in json.loads(proc.stdout) if d["severity"] == "error"}
            assert set(files) <= reported, sorted(set(files) - reported)
        else:  # the fixed first line: FILE:LINE:COL: error[CODE]: message
            assert re.search(r"^\S+bad02\.kdr:1:\d+: error\[KDR001\]: ", proc.stderr, re.M)


def test_malformed_recipes_in_process(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The same through ``fmt`` and ``compile`` too, each file alone (in process, fast)."""
    for i, text in enumerate(MALFORMED):
        path = tmp_path / f"bad{i:02d}.kdr"
        path.write_text(text, encoding="utf-8")
        for command in ("check", "compile", "fmt"):
            code, err = run_kdr([command, str(path)], capsys)
            # fmt only parses: it formats a recipe whose errors are semantic (exit 0).
            assert code == 1 or (command == "fmt" and code == 0), (command, text[:60], err)
            assert "Traceback" not in err and "KDR999" not in err, (command, text[:60], err)
