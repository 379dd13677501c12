"""The job's metrics report: metrics_report.tsv and one self-contained metrics.html.

The page is rendered only from the four tsv files (metrics.tsv, metrics_report.tsv, top_cpu.tsv,
top_mem.tsv), so a full plot and `update_html_only` share one path. It loads nothing from
anywhere: inline CSS, no script, charts drawn with seaborn on matplotlib's Agg canvas and
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
from tibanna.metrics.resources import read_metrics_tsv
from tibanna.metrics.top import read_top_tsv

REPORT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
METRICS_TSV = "metrics.tsv"
REPORT_TSV = "metrics_report.tsv"
TOP_CPU_TSV = "top_cpu.tsv"
TOP_MEM_TSV = "top_mem.tsv"
HTML = "metrics.html"
TSV_FILES = (METRICS_TSV, REPORT_TSV, TOP_CPU_TSV, TOP_MEM_TSV)
TITLE = "Tibanna Metrics"

# summary key -> metrics_report.tsv row, in upstream's order
_REPORT_ROWS = (
    ("max_mem_used_MB", "Maximum_Memory_Used_Mb"),
    ("min_mem_available_MB", "Minimum_Memory_Available_Mb"),
    ("max_disk_space_used_GB", "Maximum_Disk_Used_Gb"),
    ("max_mem_utilization_percent", "Maximum_Memory_Utilization"),
    ("max_cpu_utilization_percent", "Maximum_CPU_Utilization"),
    ("max_disk_space_utilization_percent", "Maximum_Disk_Utilization"),
)


def metrics_report_tsv(summary: Mapping[str, Any], *, instance_type: str, start: _dt.datetime,
                       end: _dt.datetime, cost: str | float | None = None) -> str:
    """metrics_report.tsv in upstream's format; `Cost` is added when known."""
    rows = [("Metric", "Value")]
    rows += [(label, str(summary.get(key, ""))) for key, label in _REPORT_ROWS]
    rows += [
        ("Start_Time", start.strftime(REPORT_TIME_FORMAT)),
        ("End_Time", end.strftime(REPORT_TIME_FORMAT)),
        ("Instance_Type", instance_type),
        ("Estimated_Cost", str(summary.get("cost_estimate", 0.0))),
        ("Estimated_Cost_Type", str(summary.get("cost_estimate_type", "NA"))),
    ]
    if cost not in (None, ""):
        rows.append(("Cost", str(cost)))
    return "".join(f"{k}\t{v}\n" for k, v in rows)


def read_report_tsv(text: str | None) -> dict[str, str]:
    """metrics_report.tsv as {row name: value} (the header row left out)."""
    values: dict[str, str] = {}
    for line in (text or "").splitlines():
        name, _, value = line.partition("\t")
        if name and name != "Metric":
            values.setdefault(name, value)
    return values


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


def _time_axis(last_minute: float) -> tuple[float, str]:
    """Minutes for short jobs, hours past three hours: (divisor, axis label)."""
    return (60.0, "Elapsed time (h)") if last_minute > 180 else (1.0, "Elapsed time (min)")


def _line_chart(minutes: Sequence[float], lines: Sequence[tuple[str, Sequence[float | None]]],
                ylabel: str, percent: bool = False) -> bytes | None:
    """Lines over time (gaps skipped); None when no line has a value."""
    import pandas as pd

    frames = [pd.DataFrame({"x": minutes, "value": values, "series": label}) for label, values in lines]
    data = pd.concat(frames).dropna() if frames else pd.DataFrame()
    if data.empty:
        return None
    divisor, xlabel = _time_axis(max(minutes))
    data["x"] = data["x"] / divisor
    present = set(data["series"])
    labels = [label for label, _ in lines if label in present]
    with _theme() as sns:
        fig = _figure()
        ax = fig.subplots()
        sns.lineplot(data=data, x="x", y="value", hue="series", hue_order=labels,
                     palette=sns.color_palette("deep", len(labels)), ax=ax, linewidth=1.8,
                     marker="o" if len(minutes) <= 30 else None, markersize=4)
        ax.set(xlabel=xlabel, ylabel=ylabel)
        top = max(100.0, data["value"].max()) * 1.05 if percent else data["value"].max() * 1.1
        ax.set_ylim(0, top or 1.0)
        ax.set_xlim(left=0)
        ax.legend(title=None, frameon=False, loc="upper left", ncols=len(labels))
        return _png(fig)


def _short(command: str, width: int = 60) -> str:
    return command if len(command) <= width else command[: width - 1] + "…"


def _stacked_chart(intervals: Sequence[int], commands: Sequence[str], rows: Sequence[Sequence[float]],
                   ylabel: str) -> bytes | None:
    """Per-process values stacked per minute; None without data."""
    if not commands or not rows:
        return None
    divisor, xlabel = _time_axis(max(intervals) - 1)
    x = [(i - 1) / divisor for i in intervals]
    with _theme() as sns:
        colors = sns.color_palette("tab20" if len(commands) > 10 else "deep", len(commands))
        fig = _figure(3.4 + 0.24 * math.ceil(len(commands) / 2))
        ax = fig.subplots()
        bottom = [0.0] * len(x)
        for j, command in enumerate(commands):
            values = [row[j] for row in rows]
            ax.bar(x, values, width=1.0 / divisor, bottom=bottom, color=colors[j], linewidth=0,
                   label=_short(command), align="edge")
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set(xlabel=xlabel, ylabel=ylabel)
        ax.set_xlim(0, max(x) + 1.0 / divisor)
        ax.set_ylim(0, max(max(bottom), 1.0) * 1.1)
        fig.legend(loc="outside lower center", ncols=2, frameon=False, fontsize="small")
        return _png(fig)


@dataclass(frozen=True)
class _Chart:
    title: str
    png: bytes | None
    empty_note: str
    details: str = ""


def _process_table(commands: Sequence[str], cpu_rows: Sequence[Sequence[float]],
                   mem: tuple[list[str], list[int], list[list[float]]]) -> str:
    """Full command lines with peak and mean %CPU and peak %MEM (the chart legend is shortened)."""
    mem_commands, _, mem_rows = mem
    lines = []
    for j, command in enumerate(commands):
        cpu = [row[j] for row in cpu_rows]
        k = mem_commands.index(command) if command in mem_commands else None
        peak_mem = max((row[k] for row in mem_rows), default=0.0) if k is not None else 0.0
        lines.append(f"<tr><td><code>{html.escape(command)}</code></td><td class=num>{max(cpu):.1f}</td>"
                     f"<td class=num>{sum(cpu) / len(cpu):.1f}</td><td class=num>{peak_mem:.1f}</td></tr>")
    return ('<table class="procs"><thead><tr><th>Command</th><th>Peak %CPU</th><th>Mean %CPU</th>'
            f'<th>Peak %MEM</th></tr></thead><tbody>{"".join(lines)}</tbody></table>')


def _charts(metrics: dict[str, list[float | None]], top_cpu: tuple, top_mem: tuple) -> list[_Chart]:
    minutes = [i - 1 for i in metrics.get("interval", [])]

    def col(name: str) -> list[float | None]:
        return metrics.get(name) or [None] * len(minutes)

    no_samples = "No resource samples were recorded for this job."
    no_top = "No process of the job was seen by top."
    cpu_commands, cpu_intervals, cpu_rows = top_cpu
    mem_commands, mem_intervals, mem_rows = top_mem
    return [
        _Chart("Resource utilization", _line_chart(minutes, [
            ("CPU", col("max_cpu_utilization_percent")),
            ("Memory", col("max_mem_utilization_percent")),
            ("Disk (/data1)", col("max_disk_space_utilization_percent")),
        ], "Utilization (%)", percent=True), no_samples),
        _Chart("Memory", _line_chart(minutes, [
            ("Used", col("max_mem_used_MB")), ("Available", col("min_mem_available_MB")),
        ], "Memory (MB)"), no_samples),
        _Chart("Disk usage (/data1)", _line_chart(minutes, [("Used", col("max_disk_space_used_GB"))],
                                                  "Disk used (GB)"), no_samples),
        _Chart("CPU usage per process (from top)",
               _stacked_chart(cpu_intervals, cpu_commands, cpu_rows, "CPU (%)"), no_top,
               _process_table(cpu_commands, cpu_rows, top_mem) if cpu_commands and cpu_rows else ""),
        _Chart("Memory usage per process (from top)",
               _stacked_chart(mem_intervals, mem_commands, mem_rows, "Memory (%)"), no_top),
    ]


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
    try:
        return _dt.datetime.strptime(value or "", REPORT_TIME_FORMAT)
    except ValueError:
        return None


def _rows(pairs: Sequence[tuple[str, str]]) -> str:
    return "".join(f"<tr><td>{html.escape(k)}</td><td class=num>{html.escape(v)}</td></tr>" for k, v in pairs)


def render_html(files: Mapping[str, str | None], *, jobid: str = "") -> str:
    """metrics.html from the tsv texts (missing files count as empty)."""
    report = read_report_tsv(files.get(REPORT_TSV))
    start, end = _parse_time(report.get("Start_Time")), _parse_time(report.get("End_Time"))
    total = str(end - start) if start and end else "---"
    estimate = _cost(report.get("Estimated_Cost"))
    estimate_type = report.get("Estimated_Cost_Type") or "NA"
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
        ("Peak CPU", _number(report.get("Maximum_CPU_Utilization"), 1) + " %"),
        ("Peak memory", _number(report.get("Maximum_Memory_Used_Mb"), 0) + " MB"),
        ("Peak disk", _number(report.get("Maximum_Disk_Used_Gb")) + " GB"),
        ("Cost", cost) if cost != "---" else ("Cost (estimated)", estimate),
    ]
    metrics_rows = [
        ("Maximum Memory Used [Mb]", _number(report.get("Maximum_Memory_Used_Mb"))),
        ("Minimum Memory Available [Mb]", _number(report.get("Minimum_Memory_Available_Mb"))),
        ("Maximum Disk Used (/data1) [Gb]", _number(report.get("Maximum_Disk_Used_Gb"))),
        ("Maximum Memory Utilization [%]", _number(report.get("Maximum_Memory_Utilization"))),
        ("Maximum CPU Utilization [%]", _number(report.get("Maximum_CPU_Utilization"))),
        ("Maximum Disk Utilization (/data1) [%]", _number(report.get("Maximum_Disk_Utilization"))),
        ("Cost (USD)", cost),
        ("Cost (estimated) (USD)", estimated),
    ]
    charts = _charts(read_metrics_tsv(files.get(METRICS_TSV) or ""),
                     read_top_tsv(files.get(TOP_CPU_TSV) or ""), read_top_tsv(files.get(TOP_MEM_TSV) or ""))
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
