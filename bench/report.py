"""The results as a Markdown table and a PNG figure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence, Set
from pathlib import Path

from bench.context import Row


def number(value: float, unit: str = "") -> str:
    """A figure as the table shows it: thousands separated, a few significant digits."""
    if math.isnan(value):
        return "n/a"
    if unit == "/s" or abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"


def verdict(row: Row) -> str:
    return "" if row.met is None else ("yes" if row.met else "**no**")


def render_markdown(sections: Mapping[str, Sequence[Row]], machine: Mapping[str, str], *, command: str,
                    image: str = "latest.png") -> str:
    """The whole results page: machine, then one table per case, medians first."""
    summary = (f"`{command}` — medians of the runs listed; ratios are taken within one run, "
               "then their median is quoted.")
    lines = ["# notifyd benchmark results", "", summary, "", "## Machine", ""]
    lines += [f"- **{label}**: {value}" for label, value in machine.items()]
    for title, rows in sections.items():
        lines += ["", f"## {title}", "", "| figure | median | runs | target | met |", "|---|---:|---|---|---|"]
        for row in rows:
            runs = ", ".join(number(v, row.unit) for v in row.runs)
            unit = f" {row.unit}" if row.unit else ""
            note = f" ({row.note})" if row.note else ""
            lines.append(f"| {row.figure}{note} | {number(row.median, row.unit)}{unit} | {runs} | {row.target} "
                         f"| {verdict(row)} |")
    lines += ["", f"![benchmark figures]({image})", ""]
    return "\n".join(lines)


def write_plot(path: Path, rows: Mapping[str, Row], *, levels: Sequence[int]) -> None:
    """Four panels: throughput against the bare loop, concurrency against its bound, latency, scale-out."""
    import matplotlib  # imported here: only the benchmark needs it (the ``bench`` extra)

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, ((ceiling, io), (latency, scale)) = pyplot.subplots(2, 2, figsize=(9, 6.5), dpi=80)
    _bars(ceiling, rows, {"bare loop": "throughput.bare", "sync,\non the loop": "throughput.notifyd",
                          "async def": "throughput.notifyd.coroutine", "sync,\nthread pool": "throughput.notifyd.pool"},
          "1. Throughput ceiling, no-op handlers (notifications/s)", references={"bare loop"})
    _concurrency(io, rows, levels)
    _bars(latency, rows, {"bare\np99": "latency.bare.p99", "p50": "latency.p50", "p99": "latency.p99",
                          "bare p99\ndefault": "latency.bare.p99.default", "p50\ndefault": "latency.p50.default",
                          "p99\ndefault": "latency.p99.default"},
          "3. Latency at 1,000/s (ms, log; fetch wait 10 ms, then default)", target=50,
          references={"bare\np99", "bare p99\ndefault"}, log=True)
    _bars(scale, rows, {"one daemon": "scale.one", "two daemons": "scale.two"}, "5. Scaling out (notifications/s)",
          references={"one daemon"})
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def _bars(axes, rows: Mapping[str, Row], keys: Mapping[str, str], title: str, *, target: float | None = None,
          references: Set[str] = frozenset(), log: bool = False) -> None:
    """One bar per figure present; the ``references`` (what notifyd is compared with) in grey.

    ``log``: a log scale, for figures an order of magnitude apart (latency with a tuned and a
    default fetch wait).
    """
    labels = [label for label, key in keys.items() if key in rows]
    values = [rows[keys[label]].median for label in labels]
    axes.bar(labels, values, color=["#8c8c8c" if label in references else "#2f6db5" for label in labels])
    if log:
        axes.set_yscale("log")
    axes.tick_params(axis="x", labelsize=8)
    for x, value in enumerate(values):
        axes.annotate(number(value), (x, value), ha="center", va="bottom")
    if target is not None:
        axes.axhline(target, color="#c0392b", linestyle="--", label=f"target {target:g}")
        axes.legend(loc="upper left")
    axes.set_title(title, fontsize=10)


def _concurrency(axes, rows: Mapping[str, Row], levels: Sequence[int]) -> None:
    present = [level for level in levels if f"io.sleep.rate.{level}" in rows]
    if present:
        axes.plot(present, [level / 0.05 for level in present], "--", color="#8c8c8c",
                  label="bound: concurrency / 50 ms")
        for kind, style, label in (("sleep", "o-", "asyncio.sleep handler"), ("http", "s-", "webhook handler")):
            axes.plot(present, [rows[f"io.{kind}.rate.{level}"].median for level in present], style, label=label)
        if "io.ceiling.rate" in rows:
            axes.axhline(rows["io.ceiling.rate"].median, color="#8e44ad", linestyle="-.",
                         label="HTTP ceiling (server answers at once)")
        if "throughput.notifyd" in rows:
            axes.axhline(rows["throughput.notifyd"].median, color="#c0392b", linestyle=":",
                         label="case 1 ceiling (no-op)")
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.legend(fontsize=8)
    axes.set_title("2. HTTP handler, 50 ms per call (notifications/s)", fontsize=10)
    axes.set_xlabel("concurrency")
