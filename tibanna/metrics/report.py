"""The job's metrics report: one self-contained metrics.html (metrics_report.tsv: report_tsv.py).

The page is rendered only from stored files: the four tsv files (metrics.tsv, metrics_report.tsv,
top_cpu.tsv, top_mem.tsv) and, for charts finer than the tsvs' minutes, the agent's samples.tsv
and the `.top` snapshots; so a full plot and `update_html_only` share one path. It loads nothing
from anywhere: inline CSS, no script, charts drawn with seaborn on matplotlib's Agg canvas and
embedded as PNG data URIs. matplotlib and seaborn are imported only when a page is rendered.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import html
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tibanna
from tibanna.cost import NA
from tibanna.metrics.resources import (
    MAX_CHART_POINTS,
    Points,
    bin_width,
    chart_points,
    metrics_tsv_points,
    read_metrics_tsv,
    sample_points,
)
from tibanna.metrics.report_tsv import REPORT_TIME_FORMAT, REPORT_TSV, read_report_tsv
from tibanna.metrics.top import Snapshot, TopTable, snapshots_from_tsvs, top_table
from tibanna.samples import Sample

METRICS_TSV = "metrics.tsv"
TOP_CPU_TSV = "top_cpu.tsv"
TOP_MEM_TSV = "top_mem.tsv"
HTML = "metrics.html"
TSV_FILES = (METRICS_TSV, REPORT_TSV, TOP_CPU_TSV, TOP_MEM_TSV)
TITLE = "Tibanna Metrics"

# Charts --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _theme() -> Iterator[Any]:
    """seaborn's look for the figures drawn inside, without touching global matplotlib state."""
    import matplotlib
    import seaborn as sns

    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.85),
          "axes.edgecolor": "#c9d3dc", "grid.color": "#e6edf3", "axes.titleweight": "semibold"}
    with matplotlib.rc_context(rc):
        yield sns


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _figure(height: float = 3.4) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(10, height), layout="constrained")


def _time_unit(span: float) -> tuple[float, str]:
    """Seconds up to two minutes, minutes up to three hours, hours beyond: (seconds per unit, axis label)."""
    if span <= 120:
        return 1.0, "Elapsed time (s)"
    if span <= 3 * 3600:
        return 60.0, "Elapsed time (min)"
    return 3600.0, "Elapsed time (h)"


Line = tuple[str, Sequence[tuple[float, float]]]
"""A chart line: its label and its (seconds since the start, value) points."""


@dataclass(frozen=True)
class _Panel:
    """One axes of a line chart, with its own y scale."""

    lines: Sequence[Line]
    ylabel: str
    percent: bool = False


def _line_chart(panels: Sequence[_Panel], span: float) -> bytes | None:
    """Panels of lines over [0, span] seconds, stacked on one time axis; panels without a point
    are left out, and None is returned when no panel has one."""
    import pandas as pd

    unit, xlabel = _time_unit(span)
    panels = [p for p in panels if any(points for _, points in p.lines)]
    if not panels:
        return None
    labels = [label for p in panels for label, points in p.lines if points]
    dense = max(len(points) for p in panels for _, points in p.lines) > 60
    with _theme() as sns:
        colors = dict(zip(labels, sns.color_palette("deep", len(labels)), strict=True))
        fig = _figure(3.4 if len(panels) == 1 else 0.8 + 2.3 * len(panels))
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        for ax, panel in zip(axes, panels, strict=True):
            data = pd.concat([pd.DataFrame(list(points), columns=["x", "value"]).assign(series=label)
                              for label, points in panel.lines if points], ignore_index=True)
            data["x"] = data["x"] / unit
            sns.lineplot(data=data, x="x", y="value", hue="series", palette=colors, estimator=None, ax=ax,
                         linewidth=1.4 if dense else 1.8, marker=None if dense else "o", markersize=4)
            top = max(100.0, data["value"].max()) * 1.05 if panel.percent else data["value"].max() * 1.1
            ax.set(xlabel=xlabel, ylabel=panel.ylabel, ylim=(0, top or 1.0),
                   xlim=(0, max(span / unit, data["x"].max())))
            ax.legend(title=None, frameon=False, loc="upper left", ncols=len(panel.lines))
        return _png(fig)


def _short(command: str, width: int = 60) -> str:
    return command if len(command) <= width else command[: width - 1] + "…"


def _seen_rows(table: TopTable, metric: str) -> tuple[list[float], list[list[float]]]:
    """(seconds since the start, values) of the table's rows that a snapshot fell in; a row's
    time is where it begins (top_table puts a snapshot in the row nearest to it, so row i
    begins half an interval before i intervals)."""
    rows = table.cpu if metric == "cpu" else table.mem
    kept = [((i - 0.5) * table.interval, row)
            for i, (row, seen) in enumerate(zip(rows, table.seen, strict=True)) if seen]
    return [x for x, _ in kept], [row for _, row in kept]


def _stacked_chart(table: TopTable, metric: str, span: float, ylabel: str) -> bytes | None:
    """Per-process values stacked, each row held until the next one seen; None without data."""
    seconds, rows = _seen_rows(table, metric)
    if not table.commands or not rows:
        return None
    unit, xlabel = _time_unit(span)
    x = [t / unit for t in seconds] + [(seconds[-1] + table.interval) / unit]
    rows = [*rows, rows[-1]]
    columns = [[row[j] for row in rows] for j in range(len(table.commands))]
    with _theme() as sns:
        colors = sns.color_palette("tab20" if len(table.commands) > 10 else "deep", len(table.commands))
        fig = _figure(3.4 + 0.24 * math.ceil(len(table.commands) / 2))
        ax = fig.subplots()
        ax.stackplot(x, *columns, labels=[_short(c) for c in table.commands], colors=colors, step="post",
                     linewidth=0)
        ax.set(xlabel=xlabel, ylabel=ylabel)
        ax.set_xlim(0, max(span / unit, x[-1]))
        ax.set_ylim(0, max(max(map(sum, rows)), 1.0) * 1.1)
        fig.legend(loc="outside lower center", ncols=2, frameon=False, fontsize="small")
        return _png(fig)


@dataclass(frozen=True)
class _Chart:
    title: str
    png: bytes | None
    empty_note: str
    details: str = ""


def _process_table(table: TopTable) -> str:
    """Full command lines with peak and mean %CPU and peak %MEM (the chart legend is shortened)."""
    _, cpu_rows = _seen_rows(table, "cpu")
    _, mem_rows = _seen_rows(table, "mem")
    lines = []
    for j, command in enumerate(table.commands):
        cpu = [row[j] for row in cpu_rows]
        peak_mem = max(row[j] for row in mem_rows)
        lines.append(f"<tr><td><code>{html.escape(command)}</code></td><td class=num>{max(cpu):.1f}</td>"
                     f"<td class=num>{sum(cpu) / len(cpu):.1f}</td><td class=num>{peak_mem:.1f}</td></tr>")
    return ('<table class="procs"><thead><tr><th>Command</th><th>Peak %CPU</th><th>Mean %CPU</th>'
            f'<th>Peak %MEM</th></tr></thead><tbody>{"".join(lines)}</tbody></table>')


CPU_NOTE = ("CPU is the job's use of all the machine's CPUs together (100 % = every CPU busy), as "
            "CloudWatch's cpu_usage_active; per process, %CPU is top's (100 % = one core).")


def _charts(points: Mapping[str, Sequence[tuple[float, float]]], table: TopTable, span: float) -> list[_Chart]:
    """The page's charts: resources over time from `points` (chart_points), processes from `table`."""
    def line(label: str, column: str) -> Line:
        return label, points.get(column) or []

    disk = points.get("max_disk_space_used_GB") or []
    if max((v for _, v in disk), default=0.0) < 1:  # a small folder reads better in MB
        disk_panel = _Panel([("Used", [(x, v * 1024) for x, v in disk])], "Disk used (MB)")
    else:
        disk_panel = _Panel([("Used", disk)], "Disk used (GB)")
    no_samples = "No resource samples were recorded for this job."
    no_top = "No process of the job was seen by top."
    return [
        _Chart("Resource utilization", _line_chart([_Panel([
            line("CPU (all CPUs)", "max_cpu_utilization_percent"),
            line("Memory", "max_mem_utilization_percent"),
            line("Disk (/data1)", "max_disk_space_utilization_percent"),
        ], "Utilization (%)", percent=True)], span), no_samples, f'<p class="note">{html.escape(CPU_NOTE)}</p>'),
        # Two scales: on a big machine the job's few MB used would lie flat under the GB available.
        _Chart("Memory", _line_chart([_Panel([line("Used", "max_mem_used_MB")], "Used (MB)"),
                                      _Panel([line("Available", "min_mem_available_MB")], "Available (MB)")],
                                     span), no_samples),
        _Chart("Disk usage (/data1)", _line_chart([disk_panel], span), no_samples),
        _Chart("CPU usage per process (from top)",
               _stacked_chart(table, "cpu", span, "CPU (% of one core)"), no_top,
               _process_table(table) if any(table.seen) else ""),
        _Chart("Memory usage per process (from top)",
               _stacked_chart(table, "mem", span, "Memory (% of the machine)"), no_top),
    ]


def _window(report: Mapping[str, str], samples: Sequence[Sample],
            snapshots: Sequence[Snapshot]) -> tuple[_dt.datetime, _dt.datetime]:
    """The charts' time window: the report's Start_Time to End_Time (stamps are whole seconds,
    so the end's second is in), else the data's extent."""
    start, end = _parse_time(report.get("Start_Time")), _parse_time(report.get("End_Time"))
    if end is not None:
        end += _dt.timedelta(seconds=1)
    if start is None or end is None:
        times = [s.time for s in samples] + [s.time.replace(tzinfo=_dt.timezone.utc).timestamp() for s in snapshots]
        start = start or _dt.datetime.fromtimestamp(min(times, default=0), _dt.timezone.utc)
        end = end or _dt.datetime.fromtimestamp(max(times, default=0), _dt.timezone.utc)
    return start, max(start, end)


def chart_data(files: Mapping[str, str | None], samples: Sequence[Sample] = (),
               snapshots: Sequence[Snapshot] = ()) -> tuple[Points, TopTable, float]:
    """What the charts draw, at the finest resolution stored: the samples, else metrics.tsv's
    minutes; the `.top` snapshots, else the top tsvs' minutes. Long series are binned.

    Returns the resource points (seconds since the start, value), the per-process table and the
    window's length in seconds.
    """
    start, end = _window(read_report_tsv(files.get(REPORT_TSV)), samples, snapshots)
    span = (end - start).total_seconds()
    points = sample_points(samples) if samples else \
        metrics_tsv_points(read_metrics_tsv(files.get(METRICS_TSV) or ""), start)
    origin = start.replace(tzinfo=None)  # top's time stamps are naive UTC
    if not snapshots:
        snapshots = snapshots_from_tsvs(files.get(TOP_CPU_TSV) or "", files.get(TOP_MEM_TSV) or "", origin)
    in_window = [s for s in snapshots if s.time < origin + _dt.timedelta(seconds=span)]
    # top's time stamps are whole seconds: finer rows would only split snapshots of one second.
    table = top_table(in_window, interval=bin_width(max(span / MAX_CHART_POINTS, 1.0)), origin=origin)
    return chart_points(points, start, end), table, span


# The page ------------------------------------------------------------------------------------
_CSS = """
:root { --ink:#1d2b36; --muted:#5b6b78; --navy:#20445e; --blue:#2c6088; --line:#e1e8ee; --bg:#f5f8fa; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
header { background:var(--navy); color:#fff; padding:22px 40px; }
header h1 { margin:0; font-weight:300; font-size:1.7rem; letter-spacing:.02em; }
header p { margin:4px 0 0; color:#b9cbd9; }
main { max-width:1100px; margin:0 auto; padding:24px 20px 40px; }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(170px,1fr)); gap:14px; margin-bottom:22px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:14px 16px; }
.card .label { color:var(--muted); font-size:.8rem; text-transform:uppercase; letter-spacing:.05em; }
.card .value { font-size:1.35rem; font-weight:600; margin-top:2px; }
.tables { display:grid; grid-template-columns:repeat(auto-fit,minmax(320px,1fr)); gap:18px; margin-bottom:26px;
  align-items:start; }
table { width:100%; border-collapse:collapse; background:#fff; border:1px solid var(--line); border-radius:8px;
  overflow:hidden; }
th { background:var(--blue); color:#fff; font-weight:500; text-align:left; padding:10px 14px; }
td { padding:9px 14px; border-top:1px solid var(--line); }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
section.chart { background:#fff; border:1px solid var(--line); border-radius:8px; margin:0 0 22px; overflow:hidden; }
section.chart h2 { margin:0; padding:11px 16px; font-size:1rem; font-weight:500; color:#fff; background:var(--blue); }
section.chart img { display:block; width:100%; height:auto; }
section.chart .empty { padding:26px 16px; color:var(--muted); font-style:italic; }
section.chart .note { margin:0; padding:8px 16px 12px; color:var(--muted); font-size:.85rem; }
table.procs { border:0; border-radius:0; border-top:1px solid var(--line); font-size:.85rem; }
table.procs th { background:#eef3f7; color:var(--ink); }
table.procs td:first-child { word-break:break-all; }
footer { color:var(--muted); font-size:.8rem; text-align:center; margin-top:10px; }
"""


def _number(value: str | None, digits: int = 2) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "---"
    return f"{number:,.{digits}f}"


def _cost(value: str | None) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "---"
    return f"${number:.5f}" if number > 0 else "---"


def _parse_time(value: str | None) -> _dt.datetime | None:
    """A metrics_report.tsv time (UTC)."""
    try:
        return _dt.datetime.strptime(value or "", REPORT_TIME_FORMAT).replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        return None


def _rows(pairs: Sequence[tuple[str, str]]) -> str:
    return "".join(f"<tr><td>{html.escape(k)}</td><td class=num>{html.escape(v)}</td></tr>" for k, v in pairs)


def render_html(files: Mapping[str, str | None], *, jobid: str = "", samples: Sequence[Sample] = (),
                snapshots: Sequence[Snapshot] = ()) -> str:
    """metrics.html from the tsv texts (missing files count as empty), with the time charts drawn
    from the agent's `samples` and top `snapshots` when there are any (finer than the tsvs' minutes)."""
    report = read_report_tsv(files.get(REPORT_TSV))
    start, end = _parse_time(report.get("Start_Time")), _parse_time(report.get("End_Time"))
    total = str(end - start) if start and end else "---"
    estimate = _cost(report.get("Estimated_Cost"))
    estimate_type = report.get("Estimated_Cost_Type") or NA
    estimated = f"{estimate} ({estimate_type})" if estimate != "---" else "---"
    general_rows = [
        ("EC2 Instance Type", report.get("Instance_Type") or "---"),
        ("Start Time [UTC]", report.get("Start_Time") or "---"),
        ("End Time [UTC]", report.get("End_Time") or "---"),
        ("Total Time", total),
    ]
    cost = _cost(report.get("Cost"))
    cards = [
        ("Total time", total),
        ("Peak CPU (all CPUs)", _number(report.get("Maximum_CPU_Utilization"), 1) + " %"),
        ("Peak memory", _number(report.get("Maximum_Memory_Used_Mb"), 0) + " MB"),
        ("Peak disk", _number(report.get("Maximum_Disk_Used_Gb")) + " GB"),
        ("Cost", cost) if cost != "---" else ("Cost (estimated)", estimate),
    ]
    metrics_rows = [
        ("Maximum Memory Used [Mb]", _number(report.get("Maximum_Memory_Used_Mb"))),
        ("Minimum Memory Available [Mb]", _number(report.get("Minimum_Memory_Available_Mb"))),
        ("Maximum Disk Used (/data1) [Gb]", _number(report.get("Maximum_Disk_Used_Gb"))),
        ("Maximum Memory Utilization [%]", _number(report.get("Maximum_Memory_Utilization"))),
        ("Maximum CPU Utilization [% of all CPUs]", _number(report.get("Maximum_CPU_Utilization"))),
        ("Maximum Disk Utilization (/data1) [%]", _number(report.get("Maximum_Disk_Utilization"))),
        ("Cost (USD)", cost),
        ("Cost (estimated) (USD)", estimated),
    ]
    charts = _charts(*chart_data(files, samples, snapshots))
    sections = []
    for chart in charts:
        body = (f'<img alt="{html.escape(chart.title)}" src="data:image/png;base64,'
                f'{base64.b64encode(chart.png).decode()}">' if chart.png else
                f'<p class="empty">{html.escape(chart.empty_note)}</p>')
        sections.append(f'<section class="chart"><h2>{html.escape(chart.title)}</h2>{body}{chart.details}</section>')
    card_html = "".join(f'<div class="card"><div class="label">{html.escape(k)}</div>'
                        f'<div class="value">{html.escape(v)}</div></div>' for k, v in cards)
    job = f"job <code>{html.escape(jobid)}</code> · " if jobid else ""
    generated = _dt.datetime.now(_dt.timezone.utc).strftime(REPORT_TIME_FORMAT)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{TITLE}{' – ' + html.escape(jobid) if jobid else ''}</title>
<style>{_CSS}</style>
</head>
<body>
<header><h1>{TITLE}</h1><p>{job}instance type {html.escape(report.get("Instance_Type") or "---")}</p></header>
<main>
<div class="cards">{card_html}</div>
<div class="tables">
<table><tr><th colspan="2">General Information</th></tr>{_rows(general_rows)}</table>
<table><tr><th colspan="2">Metrics</th></tr>{_rows(metrics_rows)}</table>
</div>
{"".join(sections)}
<footer>tibanna {html.escape(tibanna.__version__)} · generated {generated} UTC</footer>
</main>
</body>
</html>
"""
