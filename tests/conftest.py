"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def write_zoo_weights(torch_home: Path, name: str) -> None:
    """A stand-in for torchvision's pretrained ``name`` weights in a torch hub cache: fresh
    weights in the zoo's own shapes (1000 classes), where torchvision looks before it would
    download. Nothing is fetched."""
    import torch
    from torchvision import models

    url = models.get_model_weights(name).DEFAULT.url  # type: ignore[attr-defined]
    target = torch_home / "hub" / "checkpoints" / url.rsplit("/", 1)[-1]
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(models.get_model(name).state_dict(), target)


@pytest.fixture
def zoo_weights(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], None]:
    """``zoo_weights("resnet50")``: stand-in pretrained weights, with ``TORCH_HOME`` set to
    their cache for the test."""
    torch_home = tmp_path_factory.getbasetemp() / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    return lambda name: write_zoo_weights(torch_home, name)


# -- report.png: drawn once per report shape --------------------------------------------------
#: Shapes of the reports already drawn in this session, with the PNG each one gave.
_DRAWN: dict[tuple[object, ...], bytes] = {}


def _nan_or_none(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def report_shape(report: dict[str, Any]) -> tuple[object, ...]:
    """What ``runtime.report.plot`` draws differently: the report's own fields, and per stage
    its op, its fields, which of them are missing (None/NaN) and its training's fields."""
    stages = frozenset(
        (
            stage.get("op"),
            stage.get("model") in report.get("teachers", ()),
            tuple(sorted(stage)),
            tuple(sorted(k for k, v in stage.items() if _nan_or_none(v))),
            tuple(sorted(stage.get("train") or ())),
        )
        for stage in report.get("stages", [])
    )
    return (tuple(sorted(report)), stages)


@pytest.fixture(scope="session", autouse=True)
def _draw_each_report_shape_once() -> Iterator[None]:
    """Drawing ``report.png`` costs about a second of CPU, a third of a tiny ``kdr run`` and
    paid by some 70 runs of the suite. The plot is drawn for real the first time a report of
    its shape (:func:`report_shape`) comes by, so every kind of report still goes through the
    plotting code in a real run; a later run of the same shape gets that drawing's bytes.
    tests/runtime/test_report_plot.py calls ``runtime.report.plot.plot`` itself, unaffected."""
    import runtime.report as report_module

    real = report_module.plot

    def plot(report: dict[str, Any], path: str) -> None:
        shape = report_shape(report)
        if shape not in _DRAWN:
            real(report, path)
            _DRAWN[shape] = Path(path).read_bytes()
            return
        Path(path).write_bytes(_DRAWN[shape])

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(report_module, "plot", plot)
        yield


# -- mnist10k: the packaged digits decompressed once -------------------------------------------
class _CachedAsset(dict[str, Any]):
    """The arrays of an ``.npz``, usable as ``np.load``'s context manager."""

    def __enter__(self) -> _CachedAsset:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _NumpyWithCachedLoad:
    """``numpy`` as ``runtime.data.sources.mnist10k`` sees it, but ``load`` of the asset
    decompresses it once per session (the source copies what it reads: ``astype``)."""

    def __init__(self, np: Any, asset: Path) -> None:
        self._np, self._asset, self._arrays = np, asset, _CachedAsset()

    def load(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(path) != self._asset or args or kwargs:
            return self._np.load(path, *args, **kwargs)
        if not self._arrays:
            with self._np.load(path) as npz:
                self._arrays.update({k: npz[k] for k in npz.files})
        return self._arrays

    def __getattr__(self, name: str) -> Any:
        return getattr(self._np, name)


@pytest.fixture(scope="session", autouse=True)
def _mnist10k_read_once() -> Iterator[None]:
    """Some 300 ``mnist10k`` builds in the suite each decompressed the same 1.6 MB asset
    (30 ms of CPU each); the normalisation, resizing, limits and splits still run every time."""
    from runtime.data.sources import mnist10k

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mnist10k, "np", _NumpyWithCachedLoad(mnist10k.np, mnist10k.ASSET))
        yield


# -- latency: fewer timed rounds in the runs of the suite --------------------------------------
#: Seconds of timed rounds per stage in a test's ``kdr run`` (the report's default: 0.15 s).
TEST_LATENCY_BUDGET_S = 0.02
#: The report's own settings, kept while the session runs with the short ones.
_REAL_LATENCY: dict[str, Any] = {}


@pytest.fixture(scope="session", autouse=True)
def _short_latency_rounds() -> Iterator[None]:
    """Every stage of every ``kdr run`` times its model for a report (0.15 s of rounds, at
    least 5 of them): some 300 stages in the suite, whose tests read that the figures are
    there, never how steady they are. Here a stage gets 0.02 s and at least 2 rounds;
    tests/runtime/test_latency.py, which checks the rounds themselves, gets the real ones
    (:func:`real_latency_rounds`)."""
    from runtime import latency

    _REAL_LATENCY.update(
        min_rounds=latency.MIN_ROUNDS, budget_s=latency.time_batches.__kwdefaults__["budget_s"]
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(latency, "MIN_ROUNDS", 2)
        mp.setitem(latency.time_batches.__kwdefaults__, "budget_s", TEST_LATENCY_BUDGET_S)
        yield


@pytest.fixture(autouse=True)
def real_latency_rounds(request: pytest.FixtureRequest) -> Iterator[None]:
    """The report's own latency settings for the tests of runtime/latency.py."""
    if request.node.path.name != "test_latency.py":
        yield
        return
    from runtime import latency

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(latency, "MIN_ROUNDS", _REAL_LATENCY["min_rounds"])
        mp.setitem(latency.time_batches.__kwdefaults__, "budget_s", _REAL_LATENCY["budget_s"])
        yield
