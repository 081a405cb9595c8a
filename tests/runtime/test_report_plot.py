"""report.png: a zoomed y axis, one legible label per trained stage, teacher and final marked;
accuracy beside sparsity per stage."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from runtime.report import fields, labels, plot
from runtime.report.plot import draw


@pytest.fixture
def sample(monkeypatch: pytest.MonkeyPatch) -> Any:
    """tests/runtime/report_sample.py, imported whatever pytest's import mode."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    return importlib.import_module("report_sample")


def _labels(ax: Any) -> list[Any]:
    return [t for t in ax.texts if t.get_text()]


def test_one_point_per_stage_that_changed_a_model(sample: Any) -> None:
    points = fields.trained_points(sample.sample_report())
    assert [p["label"] for p in points] == ["1 train", "2 distill", "4-5 prune", "6-9 quant"]
    # a stage's point has its last pass's figures (the prune stage's after its recovery)
    assert [p["accuracy"] for p in points] == [0.983, 0.975, 0.9665, 0.9659]


def test_the_plot_is_written_zoomed_labelled_and_legible(sample: Any, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    report = sample.sample_report()
    plot(report, str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").stat().st_size > 10_000
    fig = draw(report)
    try:
        for ax in fig.axes[:2]:  # the scatter panels (the sparsity panel below has its own test)
            low, high = ax.get_ylim()
            assert 96.0 < low < 96.59 and 98.3 < high < 99.5  # the untrained 10% is off the axis
            texts = _labels(ax)
            assert sorted(t.get_text().rstrip("*") for t in texts) == [
                "1 train",
                "2 distill",
                "4-5 prune",
                "6-9 quant",
            ]
            assert labels.overlaps(texts) == 0
            # 98.3 / 97.5 / 96.65 are far apart on screen, not one line
            ys = ax.transData.transform([(1, 98.3), (1, 97.5), (1, 96.65)])[:, 1]
            assert min(ys[0] - ys[1], ys[1] - ys[2]) > 40
        latency = fig.axes[1]
        assert "4-5 prune*" in [t.get_text() for t in _labels(latency)]  # the noisy figure
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert legend == ["teacher", "student", "final: student"]
        notes = " ".join(t.get_text() for t in fig.texts)
        assert "teacher 11.10%" in notes and "student 9.40%" in notes  # not plotted, but said
    finally:
        plt.close(fig)


def test_crowded_labels_are_pushed_apart(sample: Any) -> None:
    import matplotlib.pyplot as plt

    report = sample.sample_report()
    base = report["stages"][-2]
    for i in range(8):  # eight stages with nearly the same figures
        e = dict(base, pass_id=f"{10 + i:03d}-prune.weights-student", op="prune.weights")
        e.update(stage=6 + i, accuracy=0.965 - 0.0001 * i, size_bytes=31_877 - 10 * i)
        report["stages"].append(e)
    fig = draw(report)
    try:
        for ax in fig.axes[:2]:
            texts = _labels(ax)
            assert len(texts) == 12
            assert labels.overlaps(texts) == 0
    finally:
        plt.close(fig)


def test_a_report_with_nothing_trained_still_plots(sample: Any, tmp_path: Path) -> None:
    report = sample.sample_report()
    report["stages"] = [e for e in report["stages"] if e["op"] == "input"]
    plot(report, str(tmp_path / "p.png"))
    assert (tmp_path / "p.png").stat().st_size > 5_000


def test_sparsity_is_drawn_beside_accuracy_per_stage(sample: Any) -> None:
    import matplotlib.pyplot as plt

    report = sample.sparse_report()
    fig = draw(report)
    try:
        accuracy, bars = fig.axes[2], fig.axes[3]
        ticks = [t.get_text() for t in accuracy.get_xticklabels()]
        assert ticks == ["1 train", "2 distill", "4-5 prune", "6-7 prune"]
        heights = [round(r.get_height(), 2) for r in bars.patches]
        assert heights == [0.0, 0.0, 50.0, 75.04]  # each stage's last entry, in %
        assert bars.get_ylim()[0] == 0 and bars.get_ylabel() == "sparsity (%)"
        texts = [t.get_text() for t in bars.texts]
        assert texts == ["50.0%", "75.0%\n2:4 100%"]  # dense stages unlabelled
        # the accuracy markers share the scatter panels' zoom, in plan order
        assert accuracy.get_ylim() == fig.axes[0].get_ylim()
        ys = [list(line.get_ydata()) for line in accuracy.get_lines()]
        assert ys == [[98.3], [97.5, 97.21, 97.02]]
    finally:
        plt.close(fig)


def test_training_curves_follow_the_run_pass_after_pass(sample: Any, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    assert fields.training_passes(sample.sample_report()) == []  # no curves row then
    report = sample.training_report()
    fig = draw(report)
    try:
        fig.savefig(tmp_path / "report.png", dpi=60)
        lr, loss, val = fig.axes[4:]
        assert lr.get_yscale() == "log"  # 5e-3 down to 5e-5: decades
        lines = [line for line in lr.get_lines() if line.get_linestyle() == "-"]  # not separators
        assert [float(line.get_xdata()[0]) for line in lines] == [0, 100, 200]  # end to end
        first = report["stages"][2]["train"]["lr_curve"]
        assert list(lines[0].get_ydata()) == [v for _, v in first]
        assert [t.get_text().strip() for t in lr.texts] == ["1 train", "2 distill", "5 distill"]
        assert len([line for line in loss.get_lines() if line.get_linestyle() == "-"]) == 3
        # validation: epoch e of 4 ends at step 25e - 1 of the distill (from 100); 3 is kept
        dashed, star = val.get_lines()
        assert list(dashed.get_xdata()) == [124, 149, 174, 199]
        assert list(star.get_xdata()) == [174] and list(star.get_ydata()) == [97.0]
        assert val.get_ylabel() == "val top-1 (%)"
    finally:
        plt.close(fig)
