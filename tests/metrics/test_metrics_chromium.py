"""metrics.html in a real browser: headless Chromium renders it offline without console errors."""
from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
from pathlib import Path

import pytest
from metrics_builders import START, job_top_text, make_samples
from PIL import Image

from tibanna.metrics.plot import JobInfo, build_report_files
from tibanna.metrics.resources import series_from_samples

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0"]


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "Uncaught" in line or "ERROR:CONSOLE" in line]


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    end = START + dt.timedelta(minutes=10)
    files = build_report_files(series_from_samples(make_samples(), START), job_top_text(),
                               JobInfo("t3.medium", START, end, True), end, estimate=(0.01, "immediate estimate"))
    path = tmp_path_factory.mktemp("report") / "metrics.html"
    path.write_text(files["metrics.html"])
    return path


def test_dom_renders_without_console_errors(page, tmp_path):
    run = chromium(page, tmp_path / "profile", "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Tibanna Metrics" in run.stdout and run.stdout.count("<img") == 5
    assert console_errors(run.stderr) == []


def test_screenshot_shows_the_page(page, tmp_path):
    shot = tmp_path / "shot.png"
    run = chromium(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,2400")
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("L")
    assert image.size == (1200, 2400)
    low, high = image.getextrema()
    assert high - low > 100


def test_console_errors_would_be_caught(tmp_path):
    """The check above means something: a page that throws is reported."""
    broken = tmp_path / "broken.html"
    broken.write_text('<!DOCTYPE html><html><body><script>throw new Error("boom")</script></body></html>')
    run = chromium(broken, tmp_path / "profile", "--dump-dom")
    assert any("boom" in line for line in console_errors(run.stderr))
