"""``kdr check|compile|fmt|explain`` never import torch, and never import user code (factories)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from kdr_golden import ROOT

PROBE = (
    "import sys, runpy\n"
    "sys.argv = ['kdr', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('kdr', run_name='__main__')\n"
    "except SystemExit as e:\n"
    "    code = e.code\n"
    "else:\n"
    "    code = 0\n"
    "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'evil'))\n"
    "print('IMPORTED', bad, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def run_kdr(args: list[str], extra_path: str | None = None) -> subprocess.CompletedProcess[str]:
    path = [str(ROOT)] + ([extra_path] if extra_path else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "args",
    [
        ["check", "recipes/quickstart.kdr"],
        ["compile", "recipes/quickstart.kdr"],
        ["compile", "recipes/quickstart.kdr", "--format", "text"],
        ["fmt", "--check", "recipes/quickstart.kdr"],
        ["explain", "KDR200"],
    ],
    ids=lambda a: "-".join(a[:2]),
)
def test_no_torch(args):
    proc = run_kdr(args)
    assert "Traceback" not in proc.stderr
    assert "IMPORTED []" in proc.stderr
    assert proc.returncode in (0, 1)


def test_factory_is_not_imported(tmp_path):
    marker = tmp_path / "imported.txt"
    pkg = tmp_path / "lib"
    pkg.mkdir()
    (pkg / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\ndef fn(**kw):\n    return None\n"
    )
    recipe = tmp_path / "r.kdr"
    recipe.write_text(
        'data = "evil:fn"(size=3)\n'
        'model teacher = "evil:fn"(width=8)\n'
        'model student = "evil.module:fn"(width=4)\n'
        "train teacher for 1 epoch\nthen distill student from teacher for 1 epoch\n"
        'then distill student from "evil:fn"(k=1, weights="w.pt") for 1 epoch\n'
    )
    for command in ("check", "compile"):
        proc = run_kdr([command, str(recipe)], extra_path=str(pkg))
        assert proc.returncode == 0, proc.stderr
        assert "IMPORTED []" in proc.stderr
    assert not marker.exists()
    # The probe itself can import it: the marker test is live.
    env = {**os.environ, "PYTHONPATH": str(pkg)}
    subprocess.run([sys.executable, "-c", "import evil"], env=env, check=True)
    assert marker.exists()
