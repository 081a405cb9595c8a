"""Atomic checkpoints, weights_only loading, and refusal of damaged files."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from recipe_lang.diagnostics import KdrError
from runtime.checkpoint import load_checkpoint, save_checkpoint, sidecar


@pytest.fixture
def helpers(monkeypatch: pytest.MonkeyPatch) -> Any:
    """tests/runtime/kdr_test_factory.py, imported whatever pytest's import mode."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    return importlib.import_module("kdr_test_factory")


def _payload(value: float) -> dict[str, object]:
    return {
        "plan_hash": "abc",
        "pass_id": "p1",
        "model": {
            "spec": {"constructor": "convnet", "kwargs": {"width": 8}},
            "history": [{"op": "prune.channels", "record": {"keep": [0, 2]}}],
        },
        "state_dict": {"w": torch.full((3,), value)},
        "rng": {"torch": torch.get_rng_state()},
        "metrics": {"accuracy": 0.9, "params": 10, "note": None, "ok": True},
    }


def _code(exc: pytest.ExceptionInfo[KdrError]) -> str:
    return exc.value.diagnostics[0].code


def test_round_trip_loads_with_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    digest = save_checkpoint(path, _payload(1.0))
    loaded = load_checkpoint(path)
    assert loaded["format"] == "kdr-checkpoint" and loaded["version"] == 1
    assert torch.equal(loaded["state_dict"]["w"], torch.ones(3))
    assert loaded["model"]["history"][0]["record"] == {"keep": [0, 2]}
    assert sidecar(path).read_text().split()[0] == digest
    torch.load(path, weights_only=True)  # plain torch can read it safely too
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_crash_before_rename_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, _payload(1.0))
    old_bytes = path.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("simulated crash between write and rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_checkpoint(path, _payload(2.0))
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    assert torch.equal(load_checkpoint(path)["state_dict"]["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "ckpt.pt.sha256"]


def test_truncated_file_is_kdr504_with_and_without_digest(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, _payload(1.0))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(KdrError) as exc:
        load_checkpoint(path)
    assert _code(exc) == "KDR504" and "ckpt.pt" in exc.value.diagnostics[0].message
    sidecar(path).unlink()
    with pytest.raises(KdrError) as exc:
        load_checkpoint(path)
    assert _code(exc) == "KDR504" and "ckpt.pt" in exc.value.diagnostics[0].message


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, _payload(1.0))
    other = tmp_path / "other.pt"
    save_checkpoint(other, _payload(5.0))
    path.write_bytes(other.read_bytes())  # a valid file, but not the one the digest names
    with pytest.raises(KdrError) as exc:
        load_checkpoint(path)
    assert _code(exc) == "KDR504" and "sha256" in exc.value.diagnostics[0].message


class Evil:
    pass


def test_pickled_objects_and_wrong_formats_are_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"format": "kdr-checkpoint", "version": 1, "x": Evil()}, evil)
    with pytest.raises(KdrError) as exc:
        load_checkpoint(evil)
    assert _code(exc) == "KDR504"
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(1)}, plain)
    with pytest.raises(KdrError) as exc:
        load_checkpoint(plain)
    assert _code(exc) == "KDR504" and "not a kdr checkpoint" in exc.value.diagnostics[0].message
    assert set(load_checkpoint(plain, require_kdr=False)) == {"w"}
    with pytest.raises(KdrError) as exc:
        load_checkpoint(tmp_path / "missing.pt")
    assert _code(exc) == "KDR504"


def test_saving_non_plain_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KdrError) as exc:
        save_checkpoint(tmp_path / "x.pt", {"bad": Evil()})
    assert _code(exc) == "KDR999"
    assert not (tmp_path / "x.pt").exists()


def test_int8_state_dict_round_trips(tmp_path: Path, helpers: Any) -> None:
    _, int8 = helpers.quantized_convnet()
    path = tmp_path / "q.pt"
    save_checkpoint(path, {"state_dict": int8.state_dict()})
    loaded = load_checkpoint(path)["state_dict"]
    assert set(loaded) == set(int8.state_dict())
