"""Pictures for `report.md` (PNG beside it), drawn from the typed results alone; each one's numbers are also in a
table of the report: the forest plot's in the gate table, the reliability diagrams' under the calibration gate,
the loss curve's in the training section.

- `forest.png`: every statistical gate (one with an interval), candidate - reference with its interval and the gate's
  threshold line, coloured by verdict. Gates measure in different units, so each has its own row and axis.
- `NAME.png` for a calibration gate: the reliability diagram of reference and candidate (equal-mass bins).

`reference` is the word the pictures use for the compared model: "base" when it is the base, else "reference".
"""

from __future__ import annotations

from pathlib import Path

from gates.types import GateResult

COLOURS = {
    "pass": "#2e7d32",
    "fail": "#c62828",
    "inconclusive": "#f9a825",
    "error": "#6a1b9a",
    "skip": "#757575",
    "n/a": "#bdbdbd",
}


def _figure(**kw):
    """A Figure drawn without pyplot: the process's matplotlib backend (the user's) is never switched."""
    from matplotlib.figure import Figure

    return Figure(**kw)


def statistical(gates: tuple[GateResult, ...]) -> list[GateResult]:
    """Gates with an interval to draw (a gate that does not apply, n/a, never has one to show)."""
    return [g for g in gates if g.applicable and g.ci is not None and g.delta is not None]


def forest_plot(gates: tuple[GateResult, ...], path: Path, reference: str = "base") -> Path | None:
    """One row per statistical gate: the estimate, its interval, the threshold (dashed) and zero (grey)."""
    rows = statistical(gates)
    if not rows:
        return None
    fig = _figure(figsize=(8, 0.9 * len(rows) + 0.8), dpi=100)
    axes = fig.subplots(len(rows), 1, squeeze=False)
    for ax, g in zip(axes[:, 0], rows, strict=True):
        lo, hi = g.ci or (g.delta, g.delta)
        colour = COLOURS.get(g.verdict, "black")
        ax.errorbar([g.delta], [0], xerr=[[g.delta - lo], [hi - g.delta]], fmt="o", color=colour, capsize=4, lw=2)
        ax.axvline(0, color="#9e9e9e", lw=1)
        span = [lo, hi, 0.0, g.delta]
        if g.threshold is not None:
            ax.axvline(g.threshold, color="black", ls="--", lw=1)
            span.append(g.threshold)
        width = (max(span) - min(span)) or 1e-3
        ax.set_xlim(min(span) - 0.15 * width, max(span) + 0.15 * width)
        ax.set_yticks([])
        ax.set_ylabel(g.name, rotation=0, ha="right", va="center", fontsize=9)
        ax.set_title(f"{g.metric} — {g.verdict}", fontsize=8, loc="left", color=colour)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(
        f"Candidate - {reference} per statistical gate (interval; dashed: threshold; grey: no change)", fontsize=9
    )
    axes[-1, 0].set_xlabel(f"candidate - {reference} (each gate in its metric's units)", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def reliability_diagram(g: GateResult, path: Path, reference: str = "base") -> Path | None:
    """Stated confidence (x) against accuracy (y) per equal-mass bin, reference and candidate; the diagonal is
    calibrated, below it is overconfident. Marker area follows the bin's items."""
    rel = g.details.get("reliability")
    if not rel:
        return None
    fig = _figure(figsize=(5, 5), dpi=100)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="#9e9e9e", ls="--", lw=1, label="calibrated")
    for variant, style, colour in (("base", "o-", "#1565c0"), ("candidate", "s-", "#c62828")):
        bins = rel.get(variant) or []
        if not bins:
            continue
        x, y = [b["confidence"] for b in bins], [b["accuracy"] for b in bins]
        summary = g.details.get(variant, {})
        label = (
            f"{reference if variant == 'base' else variant} (ECE {summary.get('ece', float('nan')):.3f}, "
            f"Brier {summary.get('brier', float('nan')):.3f})"
        )
        ax.plot(x, y, style, color=colour, label=label, alpha=0.8)
        ax.scatter(x, y, s=[12 * b["items"] ** 0.5 for b in bins], color=colour, alpha=0.4)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (probability of the chosen option)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{g.name}: reliability ({g.details.get('bins')} equal-mass bins, {g.details.get('items')} items)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def write_figures(gates: tuple[GateResult, ...], out_dir: Path, reference: str = "base") -> dict[str, Path]:
    """Every picture the report links, written into `out_dir`; a picture that cannot be drawn is left out."""
    files: dict[str, Path] = {}
    forest = forest_plot(gates, out_dir / "forest.png", reference)
    if forest:
        files["forest"] = forest
    for g in gates:
        if g.applicable and g.details.get("reliability"):
            p = reliability_diagram(g, out_dir / f"{g.name}.png", reference)
            if p:
                files[f"reliability:{g.name}"] = p
    return files
