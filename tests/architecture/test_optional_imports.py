"""Optional model libraries stay optional and cheap: importing kdr's runtime must not import
timm or transformers (their rules and pruners are registered by type name), which costs seconds
in every process and would fail where they are not installed."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_runtime_imports_no_model_library() -> None:
    code = (
        "import sys, kdr, runtime.passes, runtime.run; "
        "print(sorted(m for m in ('timm', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
