"""``report.png``: accuracy against serialized size and against batch-1 CPU latency, and
accuracy beside sparsity per stage.

One point per stage that changed a model (its last pass's figures), labelled with its pass
numbers and a short name (``4-5 prune``), joined per model in plan order; the teachers drawn as
stars, the final model ringed, the latency's min-to-p90 range as an error bar. The y axis is
zoomed to those points: an untrained input model (10% on ten classes) is listed under the
plot instead of squashing the trained ones into one line. A panel below follows the same
points in plan order: their accuracy (markers, left axis, the same zoom) in front of the
model's sparsity (grey bars, right axis, 0-100%, labelled with the value and the N:M pattern
and its conformance where there is one). When training passes recorded their curves, a last
row follows the run's training steps, pass after pass (dotted lines between passes, each
labelled): the learning rate actually used (log scale when it spans decades), and the train
loss with the validation accuracy (right axis, per epoch, the kept epoch starred) when the data
has a validation split. Uses matplotlib's Agg backend.
"""

from __future__ import annotations

import re
from typing import Any

from runtime.report import fields as f
from runtime.report import labels as lbl

#: The smallest half-range of the zoomed y axis, in percentage points.
MIN_PAD = 0.25


def _teachers(report: dict[str, Any]) -> set[str]:
    return set(report.get("teachers") or [])


def _final_model(report: dict[str, Any], points: list[dict[str, Any]]) -> str | None:
    """The model the plan ends on: the subject of its last stage that changed a model."""
    teachers = _teachers(report)
    for point in reversed(points):
        if point["model"] not in teachers:
            return str(point["model"])
    return str(points[-1]["model"]) if points else None


def y_limits(accuracies: list[float]) -> tuple[float, float]:
    """A y range (in %) around the trained points, with room above for their labels."""
    lo, hi = min(accuracies), max(accuracies)
    pad = max(0.12 * (hi - lo), MIN_PAD)
    return lo - pad, min(hi + 2 * pad, 100.0 + pad)


def _tick(fmt: Any) -> Any:
    """A tick formatter from one of ``fields``' formats, without trailing zeros (``1 MB``)."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: re.sub(r"\.0+(?=\s|$)", "", fmt(v)))


def _format_axis(ax: Any, key: str) -> None:
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(_tick(f.fmt_size if key == "size_bytes" else "{:g}".format))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.18)
    ax.grid(True, which="major", alpha=0.3)


def _footnote(report: dict[str, Any], hidden: list[dict[str, Any]]) -> str:
    stages = report["stages"]
    threads = sorted({e["threads"] for e in stages if e.get("threads") is not None})
    loads = [e["load_avg"] for e in stages if e.get("load_avg") is not None]
    cpus = report.get("machine", {}).get("cpus")
    parts = [
        "latency: CPU, batch 1, "
        + (f"{'/'.join(map(str, threads))} thread(s), " if threads else "")
        + "median, bar from min to p90"
    ]
    if any(f.noisy(p, 1) for p in stages):
        parts.append("* noisy")
    if loads:
        parts.append(f"load avg up to {max(loads):.1f}" + (f" on {cpus} CPUs" if cpus else ""))
    if hidden:
        shown = ", ".join(f"{e['model']} {f.fmt_acc(e['accuracy'])}%" for e in hidden)
        parts.append(f"not shown (below the axis): inputs {shown}")
    return "; ".join(parts)


def _panel(
    ax: Any,
    key: str,
    points: list[dict[str, Any]],
    report: dict[str, Any],
    extra: list[dict[str, Any]],
) -> dict[str, Any]:
    """Draw one panel's points, lines and bars; returns ``labels.place``'s arguments."""
    import matplotlib.pyplot as plt

    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    teachers, final = _teachers(report), _final_model(report, points)
    latency = key == "latency_ms_b1"
    xs_all: list[float] = []
    ys_all: list[float] = []
    texts: list[str] = []
    bars: list[tuple[float, float, float]] = []
    for m, model in enumerate(dict.fromkeys(p["model"] for p in points)):
        mine = [p for p in points if p["model"] == model and p.get(key)]
        colour, star = colours[m % len(colours)], model in teachers
        xs = [float(p[key]) for p in mine]
        ys = [100 * p["accuracy"] for p in mine]
        ax.plot(xs, ys, "-", color=colour, alpha=0.35, lw=1.2)
        if latency:
            below = [p[key] - (p.get("latency_ms_b1_min") or p[key]) for p in mine]
            above = [max((f.p90_ms(p) or p[key]) - p[key], 0.0) for p in mine]
            ax.errorbar(xs, ys, xerr=[below, above], fmt="none", ecolor=colour, capsize=2)
            bars += [(x - b, x + a, y) for x, y, b, a in zip(xs, ys, below, above, strict=True)]
        marker, size = ("*", 14) if star else ("o", 7)
        ax.plot(xs, ys, marker, ms=size, color=colour, mec="white", mew=0.6, ls="none", zorder=3)
        if model == final and mine:
            ax.plot(xs[-1:], ys[-1:], "o", ms=17, mfc="none", mec="black", mew=1.2, zorder=2)
        xs_all += xs
        ys_all += ys
        texts += [p["label"] + ("*" if latency and f.noisy(p, 1) else "") for p in mine]
    for e in extra:
        if e.get(key):
            ax.plot([e[key]], [100 * e["accuracy"]], "o", ms=7, mfc="none", mec="0.4", zorder=3)
            xs_all.append(float(e[key]))
            ys_all.append(100 * e["accuracy"])
            texts.append(e["label"])
    _format_axis(ax, key)
    return {"xs": xs_all, "ys": ys_all, "texts": texts, "bars": bars}


def _sparsity_panel(
    ax: Any, points: list[dict[str, Any]], report: dict[str, Any], ylim: tuple[float, float]
) -> Any:
    """Accuracy (left axis) in front of sparsity bars (right axis), one slot per point."""
    import matplotlib.pyplot as plt

    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    teachers = _teachers(report)
    xs = list(range(len(points)))
    bars = ax.twinx()
    shares = [100 * float(p.get("sparsity") or 0.0) for p in points]
    bars.bar(xs, shares, width=0.55, color="0.82", edgecolor="0.6", lw=0.6)
    for x, share, p in zip(xs, shares, points, strict=True):
        text = f"{share:.1f}%" + (f"\n{f.fmt_nm(p)}" if p.get("nm_pattern") else "")
        if share >= 0.05 or p.get("nm_pattern"):
            bars.text(x, share + 2, text, ha="center", va="bottom", fontsize=7, color="0.3")
    bars.set_ylim(0, 118)  # room above a full bar for its label
    bars.set_yticks([0, 25, 50, 75, 100])
    bars.set_ylabel("sparsity (%)", color="0.35")
    ax.set_zorder(bars.get_zorder() + 1)  # the accuracy markers in front of the bars
    ax.patch.set_visible(False)
    for m, model in enumerate(dict.fromkeys(p["model"] for p in points)):
        mine = [i for i, p in enumerate(points) if p["model"] == model]
        star = model in teachers
        ax.plot(
            mine,
            [100 * points[i]["accuracy"] for i in mine],
            "-*" if star else "-o",
            ms=12 if star else 6,
            color=colours[m % len(colours)],
            mec="white",
            mew=0.6,
        )
    ax.set_ylim(*ylim)
    ax.set_xlim(-0.6, len(points) - 0.4)
    # slanted labels, so that long runs (or long op names) stay legible
    crowded = len(points) > 8 or sum(len(p["label"]) for p in points) > 80
    ax.set_xticks(
        xs,
        [p["label"] for p in points],
        fontsize=8,
        rotation=30 if crowded else 0,
        ha="right" if crowded else "center",
    )
    ax.set_ylabel("top-1 (%)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title("accuracy (markers) and sparsity (bars) per stage", fontsize=9)
    return bars


def _model_colours(report: dict[str, Any], points: list[dict[str, Any]]) -> dict[str, str]:
    """Each model's colour, as in the panels above (by first appearance among the points)."""
    import matplotlib.pyplot as plt

    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    models = list(dict.fromkeys(p["model"] for p in points))
    models += [e["model"] for e in report["stages"] if e["model"] not in models]
    return {m: colours[i % len(colours)] for i, m in enumerate(dict.fromkeys(models))}


def _val_points(train: dict[str, Any]) -> list[tuple[float, float, bool]]:
    """(run-relative step, accuracy %, kept) of each validated epoch: epoch e of E ends at
    e/E of the pass's steps."""
    val = [v for v in train.get("val_curve") or [] if v.get("accuracy") is not None]
    if not val:
        return []
    epochs = max(int(v["epoch"]) for v in val)
    steps = int(train.get("steps") or 0)
    best = train.get("best_epoch")
    return [
        (int(v["epoch"]) * steps / epochs - 1, 100 * float(v["accuracy"]), v["epoch"] == best)
        for v in val
    ]


def _training_panels(
    lr_ax: Any, loss_ax: Any, passes: list[dict[str, Any]], colours: dict[str, str]
) -> Any:
    """The lr and the loss (and validation accuracy) of every training pass, end to end;
    returns the validation axis, or None."""
    offset = 0
    lrs: list[float] = []
    val_ax = None
    for e in passes:
        train, colour = e["train"], colours.get(e["model"], "0.3")
        lr = train.get("lr_curve") or []
        if lr:
            xs = [offset + s for s, _ in lr]  # the recorded steps, marked
            lr_ax.plot(xs, [v for _, v in lr], "-o", color=colour, lw=1.3, ms=2.5)
            lrs += [v for _, v in lr]
        loss = train.get("loss_curve") or []
        if loss:
            loss_ax.plot(
                [offset + s for s, _ in loss], [v for _, v in loss], "-", color=colour, lw=1.2
            )
        val = _val_points(train)
        if val:
            val_ax = val_ax or loss_ax.twinx()
            xs, ys = [offset + x for x, _, _ in val], [y for _, y, _ in val]
            val_ax.plot(xs, ys, "--o", color=colour, ms=4, lw=0.9, alpha=0.8)
            kept = [(x, y) for x, (_, y, k) in zip(xs, val, strict=True) if k]
            if kept:
                val_ax.plot(*zip(*kept, strict=True), "*", ms=13, color=colour, mec="black")
        for ax in (lr_ax, loss_ax):
            if offset:
                ax.axvline(offset - 0.5, color="0.6", ls=":", lw=0.9)
            ax.text(
                offset,
                1.0,
                f" {e['label']}",
                transform=ax.get_xaxis_transform(),
                fontsize=7,
                color="0.3",
                va="top",
                ha="left",
                clip_on=True,
            )
        offset += int(train.get("steps") or 0)
    positive = [v for v in lrs if v > 0]
    if positive and max(positive) / min(positive) > 30:
        lr_ax.set_yscale("log")
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_title("learning rate used, per step, training pass after pass", fontsize=9)
    loss_ax.set_ylabel("train loss")
    loss_ax.set_title(
        "train loss" + (" and validation accuracy (dashed, * kept)" if val_ax else ""), fontsize=9
    )
    if val_ax is not None:
        val_ax.set_ylabel("val top-1 (%)")
    for ax in (lr_ax, loss_ax):
        ax.set_xlabel("training step of the run")
        ax.set_xlim(-0.5, max(offset, 1) - 0.5)
        ax.grid(True, alpha=0.3)
    return val_ax


def _legend(fig: Any, report: dict[str, Any], points: list[dict[str, Any]]) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    teachers, final = _teachers(report), _final_model(report, points)
    handles = []
    for m, model in enumerate(dict.fromkeys(p["model"] for p in points)):
        star = model in teachers
        handles.append(
            Line2D(
                [],
                [],
                color=colours[m % len(colours)],
                marker="*" if star else "o",
                ms=10 if star else 6,
                label=f"{model} (teacher)" if star and "teacher" not in model else model,
            )
        )
    if final is not None:
        ring = Line2D([], [], marker="o", ms=11, mfc="none", mec="black", ls="none")
        ring.set_label(f"final: {final}")
        handles.append(ring)
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 1 - 0.045 * 7.4 / fig.get_figheight()),
        ncol=min(len(handles), 5),  # wraps into rows rather than run off the figure
        fontsize=9,
        frameon=False,
    )


def draw(report: dict[str, Any]) -> Any:
    """The report's figure (a matplotlib Figure); ``plot`` saves it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = f.trained_points(report)
    inputs = [
        {**e, "label": f"in {e['model']}"}
        for e in report["stages"]
        if e.get("op") == "input" and e.get("accuracy") is not None
    ]
    if not points:  # nothing trained: plot the inputs themselves
        points, inputs = inputs, []
    low, high = y_limits([100 * p["accuracy"] for p in points]) if points else (0.0, 100.0)
    shown = [e for e in inputs if 100 * e["accuracy"] >= low]
    hidden = [e for e in inputs if 100 * e["accuracy"] < low]

    training = f.training_passes(report)
    rows = (4.8, 2.4, 2.4) if training else (4.8, 2.4)
    fig = plt.figure(figsize=(11, sum(rows) + 0.2))
    grid = fig.add_gridspec(len(rows), 2, height_ratios=rows)
    axes = [fig.add_subplot(grid[0, 0])]
    axes.append(fig.add_subplot(grid[0, 1], sharey=axes[0]))
    axes[1].tick_params(labelleft=False)
    panels = []
    for ax, key, xlabel in (
        (axes[0], "size_bytes", "serialized size (log scale)"),
        (axes[1], "latency_ms_b1", "CPU latency at batch 1, ms (log scale)"),
    ):
        panels.append((ax, _panel(ax, key, points, report, shown)))
        ax.set_ylim(low, high)
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel("top-1 accuracy (%)")
    _sparsity_panel(fig.add_subplot(grid[1, :]), points, report, (low, high))
    if training:
        lr_ax = fig.add_subplot(grid[2, 0])
        loss_ax = fig.add_subplot(grid[2, 1], sharex=lr_ax)
        _training_panels(lr_ax, loss_ax, training, _model_colours(report, points))
    _legend(fig, report, points)
    fig.suptitle(
        f"kdr: {report['recipe']}: accuracy against size and latency, and sparsity, "
        "one point per stage" + (", and the training curves" if training else "")
    )
    fig.text(0.5, 0.01, _footnote(report, hidden), ha="center", fontsize=8, color="0.3")
    top = 1 - 0.065 * 7.4 / (sum(rows) + 0.2)  # the title and the legend keep their height
    fig.tight_layout(rect=(0, 0.03 * 7.4 / (sum(rows) + 0.2), 1, top))
    fig.canvas.draw()  # labels are placed in display coordinates, once the layout is final
    for ax, spots in panels:
        lbl.place(ax, **spots)
    return fig


def plot(report: dict[str, Any], path: str) -> None:
    import matplotlib.pyplot as plt

    fig = draw(report)
    fig.savefig(path, dpi=110)
    plt.close(fig)
