"""Issue 26: the sweep heatmap marks a liquidated point (red corner) apart from a failed one
(hatched) and one that could not run (crossed out)."""

from __future__ import annotations

import io
from decimal import Decimal

from stratplan.interpreter.sweep.run import Axis, Sweep
from stratplan.render.sweep import plot_png


def _row(status: str, liquidations: int) -> dict:
    summary = {"return": "0.1", "apr": "0.1", "max_drawdown": "0.05", "sharpe": "1",
               "liquidations": liquidations, "value_start": "100", "value_end": "110",
               "min_health": {}, "firings": {}}
    return {"status": status, "summary": summary, "pnl": None, "error": None}


def _red_pixels(png: bytes) -> int:
    import matplotlib.image

    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    # #d62828 = (214, 40, 40): the liquidated corner's colour, in no colormap of viridis.
    red = (abs(pixels[..., 0] - 214 / 255) < 0.02) & (abs(pixels[..., 1] - 40 / 255) < 0.02) \
        & (abs(pixels[..., 2] - 40 / 255) < 0.02)
    return int(red.sum())


def test_a_liquidated_point_gets_a_red_corner_and_others_none():
    axes = [Axis("a", (Decimal(1), Decimal(2))), Axis("b", (Decimal(1), Decimal(2)))]
    points = [{"a": a, "b": b} for a in axes[0].values for b in axes[1].values]
    calm = Sweep(axes, points, [_row("ok", 0)] * 4)
    one = Sweep(axes, points, [_row("ok", 0), _row("ok", 3), _row("ok", 0), _row("ok", 0)])
    two = Sweep(axes, points, [_row("ok", 0), _row("ok", 3), _row("ok", 0), _row("ok", 1)])
    counts = [_red_pixels(plot_png(s, "p", "return")) for s in (calm, one, two)]
    assert counts[0] < 50 < counts[1]  # the frame of the best point is crimson, not this red
    assert counts[2] > counts[1] * 1.6  # two corners draw about twice the red of one


def test_the_line_plot_marks_failed_and_liquidated_points():
    axis = [Axis("a", (Decimal(1), Decimal(2), Decimal(3)))]
    points = [{"a": v} for v in axis[0].values]
    calm = Sweep(axis, points, [_row("ok", 0)] * 3)
    marked = Sweep(axis, points, [_row("ok", 0), _row("failed", 0), _row("ok", 2)])
    assert _red_pixels(plot_png(calm, "p", "return")) < 20
    assert _red_pixels(plot_png(marked, "p", "return")) > 20  # the liquidated triangle
