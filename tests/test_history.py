"""The run's per-epoch record: curves.png's axes."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rocketc.train.history import curves_figure, plot


def _history(epochs: int) -> list[dict]:
    return [
        {
            "epoch": e,
            "lr": 0.003,
            "seconds": 1.0,
            "train_loss": {"light": 1.0 / e, "booster": 0.5 / e, "total": 1.5 / e},
            "val": {"light": {"accuracy": 0.5 + e / 100}, "booster": {"accuracy": 0.6 + e / 100}},
        }
        for e in range(1, epochs + 1)
    ]


@pytest.mark.parametrize("epochs", [2, 3, 7, 30])
def test_curves_mark_whole_epochs_only(epochs):
    """A 3-epoch run once had ticks at 1.25, 1.5, ...: an epoch is a whole number."""
    fig = curves_figure("multiclass", _history(epochs), selected_epoch=min(2, epochs))
    try:
        for ax in fig.axes:
            fig.canvas.draw()
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
    finally:
        plt.close(fig)


def test_plot_writes_a_png(tmp_path):
    plot(tmp_path / "curves.png", "multiclass", _history(3), selected_epoch=3)
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
