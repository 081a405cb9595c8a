"""Every ``kdr`` command of docs/tutorial.md runs and exits 0.

The commands are taken from the tutorial's ```bash blocks and run in order through
``kdr.cli.main``, in a temporary directory that links the repository's ``recipes/`` and
``bench/`` (so run directories and teacher checkpoints land in the temporary directory). Each
``kdr run`` gets tiny values for the params its recipe declares, unless the command sets them.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from kdr.cli import main

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"

#: Tiny values for the tutorial recipes' params, so that every run takes seconds.
TINY = {"steps": "8", "limit": "128", "epochs": "1", "recover_steps": "2", "qat_steps": "2"}


def tutorial_commands() -> list[list[str]]:
    text = TUTORIAL.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("kdr "):
                commands.append(shlex.split(line)[1:])
    return commands


def declared_params(recipe: Path) -> set[str]:
    return set(re.findall(r"^param\s+(\w+)", recipe.read_text(encoding="utf-8"), flags=re.M))


def tiny(argv: list[str]) -> list[str]:
    """``argv`` with ``--set`` tiny values for the params the recipe declares."""
    already = {argv[i + 1].split("=")[0] for i, a in enumerate(argv[:-1]) if a == "--set"}
    params = declared_params(ROOT / argv[1])
    extra = []
    for name, value in TINY.items():
        if name in params and name not in already:
            extra += ["--set", f"{name}={value}"]
    return [*argv, *extra, "--quiet"]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("recipes", "bench"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_tutorial_has_commands() -> None:
    commands = tutorial_commands()
    verbs = {c[0] for c in commands}
    assert {"check", "compile", "fmt", "explain", "run"} <= verbs
    runs = [c for c in commands if c[0] == "run"]
    assert runs[0][1].endswith("teachers.kdr"), "the teachers must be trained first"


def test_static_commands(workdir: Path) -> None:
    for argv in tutorial_commands():
        if argv[0] != "run":
            assert main(argv) == 0, f"kdr {shlex.join(argv)}"


@pytest.mark.slow
def test_run_commands(workdir: Path) -> None:
    for argv in tutorial_commands():
        if argv[0] == "run":
            assert main(tiny(argv)) == 0, f"kdr {shlex.join(tiny(argv))}"
            run_dir = workdir / argv[argv.index("--run-dir") + 1]
            assert (run_dir / "report.json").is_file()
    assert (workdir / "runs" / "orthogonality" / "teacher1.pt").is_file()
