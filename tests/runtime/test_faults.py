"""Fault injection for ``kdr run``: every fault is a diagnostic (exit 1, no traceback), and the
checkpoints finished before it stay intact (they load, and their sha256 sidecars verify)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from kdr.cli import main
from runtime.checkpoint import load_checkpoint, sidecar
from runtime.workspace import RunDir

#: Two steps an epoch: what is checked is the files a fault leaves, not the training.
RECIPE = """\
recipe "faults"
set seed = 0
data = mnist10k(batch_size=64, limit=128, eval_limit=64)
model student = convnet(width=4)
train student for {epochs} epoch
then snapshot student as dense
then train student for 1 epoch
"""
PASSES = ["000-train-student", "001-snapshot-student", "002-train-student"]


def write_recipe(tmp: Path, epochs: int = 1, name: str = "r.kdr") -> Path:
    path = tmp / name
    path.write_text(RECIPE.format(epochs=epochs))
    return path


def run(*args: str) -> int:
    return main(["run", *args, "--quiet"])


def assert_intact(rundir: Path, passes: list[str]) -> None:
    """Each named checkpoint loads weights-only and matches its sha256 sidecar."""
    for pass_id in passes:
        ckpt = rundir / "checkpoints" / f"{pass_id}.pt"
        digest, name = sidecar(ckpt).read_text().split()
        assert name == ckpt.name
        assert hashlib.sha256(ckpt.read_bytes()).hexdigest() == digest
        assert load_checkpoint(ckpt)["pass_id"] == pass_id


def digests(rundir: Path) -> dict[str, str]:
    """Every file of a run directory but the lock (which a run rewrites with its pid)."""
    return {
        str(f.relative_to(rundir)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(rundir.rglob("*"))
        if f.is_file() and f.name != ".lock"
    }


def error_text(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "KDR999" not in err
    return err


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of RECIPE (``r.kdr`` beside it: the plan hash covers the recipe's
    path), copied by the tests that damage it."""
    tmp = tmp_path_factory.mktemp("finished")
    assert run(str(write_recipe(tmp)), "--run-dir", str(tmp / "run")) == 0
    assert json.loads((tmp / "run" / "state.json").read_text())["finished"] == PASSES
    return tmp / "run"


@pytest.fixture
def recipe(finished: Path) -> Path:
    return finished.parent / "r.kdr"


@pytest.fixture
def copy_of(finished: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(finished, target)
    return target


# ---- an unwritable run directory ------------------------------------------------------------
def test_a_run_dir_under_a_regular_file_is_a_diagnostic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").write_text("not a directory")
    rundir = tmp_path / "afile" / "run"
    assert run(str(write_recipe(tmp_path)), "--run-dir", str(rundir)) == 1
    err = error_text(capsys)
    assert "error[KDR504]" in err and str(rundir) in err and "Not a directory" in err


def test_a_full_disk_mid_run_keeps_the_finished_pass_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def full_disk(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name.startswith("001-"):  # the second pass's checkpoint
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    recipe, rundir = write_recipe(tmp_path), tmp_path / "run"
    monkeypatch.setattr(os, "replace", full_disk)
    assert run(str(recipe), "--run-dir", str(rundir)) == 1
    monkeypatch.undo()
    err = error_text(capsys)
    ckpt = rundir / "checkpoints" / "001-snapshot-student.pt"
    assert f"error[KDR504]: cannot write checkpoint `{ckpt}`: No space left on device" in err
    assert "--resume" in err
    assert json.loads((rundir / "state.json").read_text())["finished"] == PASSES[:1]
    assert_intact(rundir, PASSES[:1])
    assert not ckpt.exists()
    assert not [f for f in (rundir / "checkpoints").iterdir() if f.suffix == ".tmp"]
    # Space is back: the run resumes after the finished pass and completes.
    assert run(str(recipe), "--run-dir", str(rundir), "--resume") == 0
    assert json.loads((rundir / "state.json").read_text())["finished"] == PASSES
    assert_intact(rundir, PASSES)


# ---- damaged checkpoints in a finished run --------------------------------------------------
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "victim"),
    [
        (_truncate, "002-train-student"),  # the student's latest checkpoint
        (_flip_a_byte, "002-train-student"),
        (_flip_a_byte, "000-train-student"),  # finished, but no model's latest any more
        (_truncate, "001-snapshot-student"),
    ],
)
def test_a_damaged_checkpoint_is_refused_on_resume(
    copy_of: Path, recipe: Path, capsys: pytest.CaptureFixture[str], damage, victim: str
) -> None:  # type: ignore[no-untyped-def]
    bad = copy_of / "checkpoints" / f"{victim}.pt"
    damage(bad)
    before = digests(copy_of)
    assert run(str(recipe), "--run-dir", str(copy_of), "--resume") == 1
    err = error_text(capsys)
    assert f"error[KDR504]: cannot load `{bad}`" in err
    assert "sha256" in err
    assert digests(copy_of) == before  # refused: nothing rewritten, nothing redone
    assert_intact(copy_of, [p for p in PASSES if p != victim])


# ---- a checkpoint from a different plan -----------------------------------------------------
def test_resume_with_a_changed_recipe_is_refused(
    copy_of: Path, recipe: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digests(copy_of)
    original = recipe.read_text()
    recipe.write_text(RECIPE.format(epochs=2))  # same file, one pass changed
    try:
        assert run(str(recipe), "--run-dir", str(copy_of), "--resume") == 1
    finally:
        recipe.write_text(original)
    err = error_text(capsys)
    assert "error[KDR105]" in err and "holds a run of a different plan" in err
    assert digests(copy_of) == before
    assert_intact(copy_of, PASSES)


# ---- a dataset folder with a corrupt image --------------------------------------------------
def test_a_corrupt_image_in_an_imagefolder_is_a_diagnostic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for label in ("a", "b"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(3):
                pixels = (rng.random((16, 16, 3)) * 255).astype("uint8")
                Image.fromarray(pixels).save(folder / f"{i}.png")
    garbage = tmp_path / "train" / "b" / "broken.png"
    garbage.write_bytes(b"\x89PNG this is not an image")
    recipe = tmp_path / "img.kdr"
    recipe.write_text(
        f'recipe "img"\ndata = imagefolder("{tmp_path / "train"}", eval="{tmp_path / "val"}", '
        "image_size=16, batch_size=32)\nmodel student = convnet(width=4)\n"
        "train student for 1 epoch\n"
    )
    assert run(str(recipe), "--run-dir", str(tmp_path / "run")) == 1
    err = error_text(capsys)
    assert f"error[KDR504]: cannot read image `{garbage}`" in err


# ---- a teacher whose class count changes between runs ---------------------------------------
def test_a_teacher_file_replaced_by_another_class_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runtime.models import build_model

    def teacher_weights(classes: int) -> None:
        torch.manual_seed(0)
        model = build_model("convnet", [], {"width": 4}, in_channels=1, num_classes=classes)
        torch.save(model.state_dict(), tmp_path / "t.pt")

    teacher_weights(10)
    recipe = tmp_path / "kd.kdr"
    recipe.write_text(
        'recipe "kd"\nset seed = 0\ndata = mnist10k(batch_size=64, limit=128, eval_limit=64)\n'
        f'model teacher = convnet(width=4) from "{tmp_path / "t.pt"}"\n'
        "model student = convnet(width=4)\ndistill student from teacher for 1 epoch\n"
    )
    rundir = tmp_path / "run"
    assert run(str(recipe), "--run-dir", str(rundir)) == 0
    capsys.readouterr()
    before = digests(rundir)
    teacher_weights(5)
    for extra in (["--resume"], []):
        assert run(str(recipe), "--run-dir", str(rundir), *extra) == 1
        err = error_text(capsys)
        assert "error[KDR504]" in err and "do not fit the model" in err
        assert "(5, 16) vs model (10, 16)" in err
        assert digests(rundir) == before
    assert_intact(rundir, ["000-distill-student"])


# ---- two runs on one run directory ----------------------------------------------------------
def test_a_second_run_on_a_locked_run_dir_is_refused(
    copy_of: Path, recipe: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digests(copy_of)
    holder = RunDir(copy_of)
    holder.lock()
    try:
        for extra in ([], ["--resume"]):
            assert run(str(recipe), "--run-dir", str(copy_of), *extra) == 1
            err = error_text(capsys)
            assert "error[KDR504]" in err and "in use by another kdr run" in err
            assert digests(copy_of) == before  # not cleared by the refused fresh run
    finally:
        holder.unlock()
    assert_intact(copy_of, PASSES)
    assert run(str(recipe), "--run-dir", str(copy_of), "--resume") == 0  # free again


def test_a_locked_fresh_run_dir_is_refused_as_in_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run that holds the lock but has not written plan.json yet: still "in use", not
    "holds no kdr run"."""
    holder = RunDir(tmp_path / "run")
    holder.create()
    holder.lock()
    try:
        assert run(str(write_recipe(tmp_path)), "--run-dir", str(tmp_path / "run")) == 1
        assert "in use by another kdr run" in error_text(capsys)
    finally:
        holder.unlock()
