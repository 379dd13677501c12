"""metrics.html in a real browser: headless Chromium renders it offline without console errors."""
from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

import pytest
from metrics_builders import START, job_top_text, make_samples
from pagecheck import CHROMIUM, chromium, console_errors
from PIL import Image

from tibanna.metrics.plot import JobInfo, build_report_files
from tibanna.metrics.resources import series_from_samples

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed")


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    end = START + dt.timedelta(minutes=10)
    samples = make_samples()
    files = build_report_files(series_from_samples(samples, START), job_top_text(),
                               JobInfo("t3.medium", START, end, True), end, estimate=(0.01, "immediate estimate"),
                               samples=samples)
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
