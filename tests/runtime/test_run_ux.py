"""`kdr run` as a user sees it: safe run directories (--resume / --fresh), Ctrl-C and its resume
hint, no stale locks, one plain line per finished pass, run-time diagnostics at the stage's span,
and a steady ETA."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import random
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kdr.cli import main
from runtime.progress import EtaEstimator, format_duration
from runtime.workspace import RunDir

ROOT = Path(__file__).resolve().parents[2]

TINY = """\
recipe "tiny"
set seed = 0
data = mnist10k(batch_size=32, limit=128, eval_limit=128)
model teacher = convnet(width=4)
model student = convnet(width=4)
train teacher for 2 steps
then distill student from teacher for {steps} steps
"""
PASSES = ["000-train-teacher", "001-distill-student"]
ANSI = "\x1b["


def files(rundir: Path) -> dict[str, str]:
    """Every file under ``rundir`` (the lock included), by content."""
    return {
        str(f.relative_to(rundir)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(rundir.rglob("*"))
        if f.is_file()
    }


def recipe(tmp_path: Path, steps: int = 2, extra: str = "") -> Path:
    path = tmp_path / "r.kdr"
    path.write_text(TINY.format(steps=steps) + extra)
    return path


def stages(rundir: Path) -> list[tuple[str, float, int]]:
    report = json.loads((rundir / "report.json").read_text())
    return [(s["pass_id"], s["accuracy"], s["params"]) for s in report["stages"]]


# ---- run directories ---------------------------------------------------------------------
def test_a_rerun_over_finished_work_is_refused_then_fresh_moves_it_aside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, rundir = recipe(tmp_path), tmp_path / "run"
    assert main(["run", str(path), "--run-dir", str(rundir), "--quiet"]) == 0
    assert not (rundir / ".lock").exists()
    before = files(rundir)
    capsys.readouterr()

    assert main(["run", str(path), "--run-dir", str(rundir), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "error[KDR105]" in err and "holds 2 finished passes" in err, err
    assert "use `--resume` to continue or `--fresh` to start over" in err
    assert "Traceback" not in err
    assert files(rundir) == before  # every file in place, byte for byte; no lock left

    assert main(["run", str(path), "--run-dir", str(rundir), "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"resuming: 2 passes done ({PASSES[0]} ... {PASSES[1]}), 0 to go" in err
    assert not (rundir / ".lock").exists()

    current = files(rundir)
    assert main(["run", str(path), "--run-dir", str(rundir), "--fresh"]) == 0
    err = capsys.readouterr().err
    (aside,) = tmp_path.glob("run.old-*")
    assert f"the previous run was moved to `{aside}`" in err
    assert files(aside) == current  # moved, never deleted
    assert json.loads((rundir / "state.json").read_text())["finished"] == PASSES
    assert stages(rundir) == stages(aside)  # started clean, same figures
    assert not (rundir / ".lock").exists() and not (aside / ".lock").exists()


def test_a_run_dir_without_finished_passes_restarts_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, rundir = recipe(tmp_path), tmp_path / "run"
    rundir.mkdir()
    (rundir / "plan.json").write_text("{}")
    (rundir / "state.json").write_text(
        json.dumps(
            {"version": 1, "plan_hash": "0" * 64, "finished": [], "latest": {}, "stages": []}
        )
    )
    assert main(["run", str(path), "--run-dir", str(rundir), "--quiet"]) == 0
    assert "error" not in capsys.readouterr().err
    assert json.loads((rundir / "state.json").read_text())["finished"] == PASSES


def test_a_stale_lock_is_taken_over_and_removed(tmp_path: Path) -> None:
    path, rundir = recipe(tmp_path), tmp_path / "run"
    rundir.mkdir()
    (rundir / ".lock").write_text("999999999\n")  # left by a run that was killed
    assert main(["run", str(path), "--run-dir", str(rundir), "--quiet"]) == 0
    assert not (rundir / ".lock").exists()


def test_unlock_removes_the_lock_file_and_frees_the_directory(tmp_path: Path) -> None:
    first, second = RunDir(tmp_path), RunDir(tmp_path)
    first.lock()
    assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
    with pytest.raises(Exception, match="in use by another kdr run"):
        second.lock()
    assert (tmp_path / ".lock").exists()  # the refused run left the holder's file alone
    second.unlock()  # holds nothing: a no-op
    assert (tmp_path / ".lock").exists()
    first.unlock()
    assert not (tmp_path / ".lock").exists()
    second.lock()
    second.unlock()
    assert not (tmp_path / ".lock").exists()


def test_a_failed_run_leaves_no_lock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("a regular file")
    under_a_file = tmp_path / "afile" / "s.pt"
    export = f'then export student checkpoint "{under_a_file}"\n'
    path, rundir = recipe(tmp_path, extra=export), tmp_path / "run"
    assert main(["run", str(path), "--run-dir", str(rundir), "--quiet"]) == 1
    err = capsys.readouterr().err
    # a run-time error names the recipe file and the stage's span, with its source line
    assert f"{path}:8:6: error[KDR504]: cannot write export" in err, err
    assert f' 8 | then export student checkpoint "{under_a_file}"' in err
    assert "Traceback" not in err
    assert not (rundir / ".lock").exists()


# ---- Ctrl-C, the resume hint, the skip line, plain output ----------------------------------
def _kdr(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "kdr", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_ctrl_c_then_resume_gives_the_uninterrupted_result(tmp_path: Path) -> None:
    path = recipe(tmp_path, steps=60)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kdr", "run", path.name, "--run-dir", "cut"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # plain lines: stderr is a pipe
        seen.append(line)
        if line.startswith("[2/2] distill student"):
            proc.send_signal(signal.SIGINT)  # Ctrl-C in the middle of the second pass
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, "".join(seen) + rest
    assert "Traceback" not in rest
    assert "kdr: interrupted; the finished passes are kept in `cut`" in rest
    hint = rest.split("resume with: ", 1)[1].splitlines()[0]
    assert hint == f"kdr run {path.name} --run-dir cut --resume"
    cut = tmp_path / "cut"
    assert json.loads((cut / "state.json").read_text())["finished"] == PASSES[:1]
    assert not (cut / ".lock").exists()

    resumed = _kdr(*shlex.split(hint)[1:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: 1 pass done ({PASSES[0]}), 1 to go" in resumed.stderr
    assert "[1/2]" not in resumed.stderr  # the finished pass is skipped, not rerun

    whole = _kdr("run", path.name, "--run-dir", "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    assert stages(cut) == stages(tmp_path / "whole")
    assert not (tmp_path / "whole" / ".lock").exists() and not (cut / ".lock").exists()

    # Output to a pipe: per-epoch lines from the engine, one result line per pass as it
    # finishes, no ANSI codes, and where the reports went.
    out = whole.stderr
    assert ANSI not in out
    lines = out.splitlines()
    assert any(ln.strip().startswith("epoch 1/") and " loss " in ln for ln in lines), out
    results = [ln for ln in lines if ln.startswith("[") and ": acc " in ln]
    assert [r.split(":")[0] for r in results] == ["[1/2] train teacher", "[2/2] distill student"]
    assert all(" params " in r and " KB " in r and " ms@1 " in r for r in results)
    assert "run directory: whole" in out
    reports = "reports: whole/report.json, whole/report.md, whole/report.png"
    assert lines[-1] == reports, out


# ---- the ETA -------------------------------------------------------------------------------
def _etas(step_times: list[float], estimate) -> list[float]:  # type: ignore[no-untyped-def]
    out, now = [], 0.0
    for step, dt in enumerate(step_times, start=1):
        now += dt
        out.append(estimate(step, now))
    return out


def test_the_eta_is_steady_on_noisy_step_times() -> None:
    rng = random.Random(0)
    # a slow first step (warm-up), then ~0.1 s steps with noise and a slow step every 10th
    times = [2.0] + [(0.5 if i % 10 == 0 else 0.1) * rng.uniform(0.5, 1.5) for i in range(1, 200)]
    total = len(times)
    eta = EtaEstimator(total)

    def smoothed(step: int, now: float) -> float:
        eta.update(step, now)
        return eta.remaining()

    def naive(step: int, now: float) -> float:  # remaining steps x the last step's time
        return (total - step) * times[step - 1]

    steady, rough = _etas(times, smoothed), _etas(times, naive)

    def worst_jump(etas: list[float]) -> float:
        """The largest relative change from one step to the next, past the first 10% of the
        run and before its last 10% (where every estimate heads for 0)."""
        span = etas[total // 10 : -total // 10]
        return max(abs(b - a) / a for a, b in itertools.pairwise(span))

    # steady: a step moves the estimate by a few percent at most (noise, a slow step) ...
    assert worst_jump(steady) < 0.15, worst_jump(steady)
    # ... where the naive estimate swings by 2x and more (the 0:10 -> 0:03 -> 0:10 of issue 11)
    assert worst_jump(rough) > 1.0
    # and it is right: within 25% of the true time left, half-way through
    half = total // 2
    truth = sum(times[half:])
    assert abs(steady[half - 1] - truth) < 0.25 * truth, (steady[half - 1], truth)
    assert steady[-1] == 0.0


def test_the_eta_before_any_step_is_unknown() -> None:
    assert math.isnan(EtaEstimator(10).remaining())
    assert format_duration(math.nan) == "-:--"
    assert format_duration(9.6) == "0:10"
    assert format_duration(3725) == "1:02:05"
