"""One figure style for every chart: colour-blind-safe Okabe-Ito colours, plain typography."""

from __future__ import annotations

ARM_COLOURS = {"treated": "#0072B2", "comparison": "#D55E00"}
ARM_LABELS = {"treated": "Treated (started treatment)", "comparison": "Comparison"}
GREY = "#555555"


def apply_style() -> None:
    """Set matplotlib defaults for all report figures (deterministic output, no display)."""
    import matplotlib

    matplotlib.use("Agg")  # figures are files only
    matplotlib.rcParams.update({
        "figure.dpi": 150, "savefig.dpi": 200, "font.size": 9, "axes.titlesize": 10,
        "axes.labelsize": 9, "axes.spines.top": False, "axes.spines.right": False,
        "axes.grid": True, "grid.color": "#dddddd", "grid.linewidth": 0.6,
        "legend.frameon": False, "svg.hashsalt": "stalking-eval", "path.simplify": True,
    })
