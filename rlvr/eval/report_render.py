"""Drawing the run report: report.png (matplotlib, five panels) and a self-contained report.html.

    top left      each dimension's held-out change with its 95% interval (green improved,
                  red regressed, grey flat)
    top right     the held-out mean of each dimension at every evaluation
    middle left   training reward per source and mean completion length per step
    middle right  held-out reward vs completion length, first (grey) and last evaluation
    bottom        the watch's alerts on the same step axis: one lane per alert, a bar over
                  every run of steps it was flagged

The HTML embeds the PNG as a data URI and has no scripts, styles from elsewhere or links.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

__all__ = ["render_png", "render_html"]

_COLORS = {"improved": "tab:green", "regressed": "tab:red", "flat": "tab:gray", "no_records": "tab:gray"}


def _changes(ax, dims: dict[str, dict[str, Any]]) -> None:
    labels = list(dims)
    for y, label in enumerate(labels):
        d = dims[label]
        color = _COLORS.get(d["verdict"], "tab:gray")
        if d["ci_low"] is not None:
            ax.plot([d["ci_low"], d["ci_high"]], [y, y], color=color, lw=3, alpha=0.6)
        ax.plot([d["change"]], [y], "o", color=color)
        ax.annotate(d["verdict"], (d["change"], y), xytext=(4, 4), textcoords="offset points", fontsize=7, color=color)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_title("held-out change per dimension (95% CI)")
    ax.grid(alpha=0.3)


def _heldout(ax, rows: list[dict], dims: dict) -> None:
    evals = [r for r in rows if "eval/reward/mean" in r]
    for label in dims:
        pts = [(r["step"], r[f"eval/reward/{label}/mean"]) for r in evals
               if r.get(f"eval/reward/{label}/mean") is not None]
        if pts:
            ax.plot(*zip(*pts), "o-", label=label)
    ax.set_title("held-out mean per dimension")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _alert_lanes(ax, alerts: dict) -> None:
    """One lane per alert: a bar over every run of steps it was flagged."""
    for lane, (name, a) in enumerate(alerts.items()):
        ax.broken_barh([(start - 0.5, end - start + 1) for start, end in a["episodes"]], (lane - 0.35, 0.7),
                       color=f"C{(lane + 3) % 10}")
    ax.set_yticks(range(len(alerts)), list(alerts), fontsize=7)
    ax.set_ylim(-0.6, max(len(alerts), 1) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("step")
    ax.set_title("watch alerts (steps flagged)" if alerts else "watch alerts: none raised", fontsize=9)
    ax.grid(alpha=0.3, axis="x")


def _timeline(ax, rows: list[dict], dims: dict) -> None:
    train = [r for r in rows if "reward/mean" in r and "step" in r]
    for label in dims:
        pts = [(r["step"], r[f"reward/{label}/mean"]) for r in train if r.get(f"reward/{label}/mean") is not None]
        if pts:
            ax.plot(*zip(*pts), lw=1, label=f"{label} (train)")
    lengths = [(r["step"], r["completion_len/mean"]) for r in train if r.get("completion_len/mean") is not None]
    if lengths:
        twin = ax.twinx()
        twin.plot(*zip(*lengths), color="black", lw=0.8, alpha=0.5, label="length")
        twin.set_ylabel("mean completion length")
    ax.set_title("training reward per source (lines), mean length (black)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower left")


def _scatter(ax, first: list[dict], last: list[dict]) -> None:
    for rows, color, name in ((first, "tab:gray", "first eval"), (last, "tab:blue", "last eval")):
        pts = [(r["length"], r["reward"]) for r in rows if r.get("length") is not None and r.get("reward") is not None]
        if pts:
            ax.scatter(*zip(*pts), s=8, alpha=0.5, color=color, label=name)
    ax.set_xlabel("completion length (tokens)")
    ax.set_ylabel("reward")
    ax.set_title("held-out reward vs length")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def render_png(report: dict[str, Any], target: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 10))
    grid = fig.add_gridspec(3, 2, height_ratios=[3, 3, 0.6 + 0.3 * len(report["alerts"])])
    dims, rows = report["dimensions"], report["_run"]["metrics"]
    _changes(fig.add_subplot(grid[0, 0]), dims)
    _heldout(fig.add_subplot(grid[0, 1]), rows, dims)
    timeline = fig.add_subplot(grid[1, 0])
    _timeline(timeline, rows, dims)
    _scatter(fig.add_subplot(grid[1, 1]), report["_first"], report["_last"])
    _alert_lanes(fig.add_subplot(grid[2, 0], sharex=timeline), report["alerts"])
    fig.suptitle(f"run report: {Path(report['run_dir']).name}")
    fig.tight_layout()
    fig.savefig(target, dpi=90)
    plt.close(fig)
    return target


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(report: dict[str, Any], png: Path) -> str:
    dims, alerts = report["dimensions"], report["alerts"]
    steps = report["eval_steps"]
    parts = [f"<h1>Run report: {html.escape(Path(report['run_dir']).name)}</h1>",
             f"<p>Held-out evaluations compared: steps {steps[0]} and {steps[-1]} (paired over prompts; 95% "
             f"bootstrap intervals).</p>" if steps else "<p>No per-sample held-out records: logged means only.</p>",
             "<h2>Dimensions</h2>",
             _table(["dimension", "kind", "start", "end", "change", "95% low", "95% high", "verdict", "prompts"],
                    [[k, d.get("kind"), d["start"], d["end"], d["change"], d["ci_low"], d["ci_high"],
                      d["verdict"], d["n"]] for k, d in dims.items()]) if dims else "<p>No dimensions.</p>",
             "<h2>Trade-offs</h2>"]
    trades = report["tradeoffs"]
    parts.append("<ul>" + "".join(f"<li>{html.escape(t['improved'])} improved while {html.escape(t['regressed'])} "
                                  f"regressed</li>" for t in trades) + "</ul>" if trades else
                 "<p>None: no dimension improved while another regressed.</p>")
    length = report["length"]
    parts.append("<h2>Reward vs length</h2>")
    if length:
        parts.append(_table(["", "start", "end", "change", "95% low", "95% high", "verdict"],
                            [["mean length (tokens)", length["start"], length["end"], length["change"],
                              length["ci_low"], length["ci_high"], length["verdict"]]]))
        parts.append(_table(["dimension", "correlation with length (last evaluation)"],
                            [[k, v] for k, v in length["reward_length_corr_end"].items()]))
    parts.append("<h2>Watch alerts</h2>")
    parts.append(_table(["alert", "first step", "last step", "steps flagged", "message"],
                        [[k, a["first_step"], a["last_step"], a["steps"], a["message"]] for k, a in alerts.items()])
                 if alerts else "<p>No alert was raised.</p>")
    data = base64.b64encode(Path(png).read_bytes()).decode()
    parts.append(f'<h2>Figure</h2><img alt="run report figure" src="data:image/png;base64,{data}">')
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>run report</title><style>{style}</style>"
            f"</head><body>{''.join(parts)}</body></html>\n")
