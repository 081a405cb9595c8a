"""Point labels that do not overprint each other or the markers (adjustText's idea, simply).

Each label, in turn, takes the first free spot around its point: rings of growing radius,
and on each ring the directions right, up-right, down-right, up, down, then the left side. A
spot is free when the label's box, with a small margin, overlaps no label placed before it
and no marker, and stays inside the axes. A thin leader line joins a label to its point unless
it sits at the first spot, just right of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Pixels of clearance kept around a label.
MARGIN = 2.0
#: Half the side of the square around a marker that labels keep off, in pixels (the final
#: model's ring included).
MARKER_PX = 12.0
#: Radii (pixels, beyond the marker's clearance) of the rings of candidate spots.
RINGS = tuple(range(0, 160, 8))
#: Directions tried on each ring, in order of preference.
DIRECTIONS = ((1, 0), (1, 1), (1, -1), (0, 1), (0, -1), (-1, 0), (-1, 1), (-1, -1))


def _box(label: Any, renderer: Any) -> Any:
    """The label's text box alone (an annotation's own extent includes its leader line)."""
    from matplotlib.text import Text

    label.update_positions(renderer)
    return Text.get_window_extent(label, renderer)


def _clear(box: Any, others: list[Any], frame: Any) -> bool:
    padded = box.expanded(1.0, 1.0).padded(MARGIN)
    inside = box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1
    return inside and not any(padded.overlaps(o) for o in others)


def place(
    ax: Any,
    xs: list[float],
    ys: list[float],
    texts: list[str],
    bars: Sequence[tuple[float, float, float]] = (),
    **style: Any,
) -> list[Any]:
    """Annotate point ``i`` at (``xs[i]``, ``ys[i]``) with ``texts[i]``, keeping off the
    markers and off horizontal ``bars`` ((x_from, x_to, y) in data coordinates, such as error
    bars); returns the labels. Call it once the axes' limits and the figure's layout are final."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72.0
    frame = ax.get_window_extent(renderer)
    centres = ax.transData.transform(list(zip(xs, ys, strict=True))) if xs else []
    taken = [
        Bbox.from_extents(px - MARKER_PX, py - MARKER_PX, px + MARKER_PX, py + MARKER_PX)
        for px, py in centres
    ]
    for x0, x1, y in bars:
        (ax0, ay), (ax1, _) = ax.transData.transform([(x0, y), (x1, y)])
        taken.append(Bbox.from_extents(min(ax0, ax1), ay - 2, max(ax0, ax1), ay + 2))
    labels = []
    for i, (x, y, text) in enumerate(zip(xs, ys, texts, strict=True)):
        label = ax.annotate(
            text,
            (x, y),
            xytext=(0, 0),
            textcoords="offset points",
            ha="center",
            va="center",
            fontsize=8,
            arrowprops={"arrowstyle": "-", "lw": 0.6, "color": "0.3", "shrinkA": 0, "shrinkB": 3},
            **style,
        )
        neighbours = [c for j, c in enumerate(centres) if j != i]
        ox, oy, leader = _free_spot(label, renderer, centres[i], neighbours, taken, frame)
        label.xyann = (ox / px_per_pt, oy / px_per_pt)
        if not leader:  # right next to its point
            label.arrowprops = None
            label.arrow_patch = None
        taken.append(_box(label, renderer))
        labels.append(label)
    return labels


def _free_spot(
    label: Any,
    renderer: Any,
    centre: Any,
    neighbours: Sequence[Any],
    taken: list[Any],
    frame: Any,
) -> tuple[float, float, bool]:
    """The label's offset in pixels and whether it needs a leader line: on the smallest ring
    with a free spot, the free spot farthest from the other points (so that a label does not
    seem to name its neighbour); no leader for the first spot (just right of the point)."""
    px_per_pt = label.figure.dpi / 72.0
    size = _box(label, renderer)
    clearance = MARKER_PX + MARGIN + 1
    for r in RINGS:
        free = []
        for rank, (dx, dy) in enumerate(DIRECTIONS):
            ox = dx * (size.width / 2 + clearance + r)
            oy = dy * (size.height / 2 + clearance + r)
            label.xyann = (ox / px_per_pt, oy / px_per_pt)
            if _clear(_box(label, renderer), taken, frame):
                cx, cy = centre[0] + ox, centre[1] + oy
                room = min((abs(cx - nx) + abs(cy - ny) for nx, ny in neighbours), default=1e9)
                free.append((-min(room, 60.0), rank, ox, oy))
        if free:
            _, rank, ox, oy = min(free)
            return ox, oy, r != RINGS[0] or rank != 0
    return size.width / 2 + clearance, 0.0, False  # nowhere free: its default spot


def overlaps(labels: list[Any]) -> int:
    """Pairs of labels whose boxes overlap (0 when every label is legible)."""
    if not labels:
        return 0
    renderer = labels[0].figure.canvas.get_renderer()
    boxes = [_box(label, renderer) for label in labels]
    return sum(1 for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b))
