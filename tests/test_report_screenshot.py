"""scripts/report_screenshot.py photographs a report's scorecard with the test suite's Chromium:
the README's picture is made this way, and must stay under 300 KB."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import pytest

from rlhf_eval.report import render_report
from tests.test_report import make_run

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "report_screenshot.py"
CHROMIUM = Path("/usr/bin/chromium")


def test_the_scorecard_photograph_is_a_small_png(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright", reason="playwright is not installed")
    spec = importlib.util.spec_from_file_location("report_screenshot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    html = render_report(make_run(tmp_path))[1]
    assert "Scorecard" in html.read_text()
    out = module.screenshot(html, tmp_path / "shot.png", width=900, height=500)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < module.MAX_BYTES
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (900, 500)
