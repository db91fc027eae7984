"""Photograph the top of an HTML report (its scorecard) with the test suite's headless Chromium,
for the README: `python scripts/report_screenshot.py reports/instructgpt_paper/report.html
reports/instructgpt_paper/scorecard.png`. Debian's /usr/bin/chromium, driven by Playwright (never
`playwright install`)."""

from __future__ import annotations

import argparse
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 820
MAX_BYTES = 300_000


def screenshot(report: Path, out: Path, width: int = WIDTH, height: int = HEIGHT) -> Path:
    """The first `height` CSS pixels of `report` at `width`, as a PNG of at most MAX_BYTES."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(report.resolve().as_uri())
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": width, "height": height})
        finally:
            browser.close()
    size = out.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{out} is {size} bytes, over {MAX_BYTES}: take a smaller --height")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=WIDTH)
    parser.add_argument("--height", type=int, default=HEIGHT)
    args = parser.parse_args()
    print(screenshot(args.report, args.out, args.width, args.height))


if __name__ == "__main__":
    main()
