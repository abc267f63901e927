"""Headless Chromium for the dashboards' tests: the page as a browser renders it (DOM after
load, a screenshot), and the panels' values read back from that DOM. Debian's `chromium`
(`make run-tools`); no browser library."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

WINDOW = "1400,2000"


def binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    exe = binary()
    if exe is None:
        raise RuntimeError("chromium is not installed (make run-tools)")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run(
            [
                exe,
                "--headless",
                "--no-sandbox",  # as root in a container; the pages are our own
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={WINDOW}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )


def dump_dom(url: str) -> str:
    return _run("--dump-dom", url).stdout


def screenshot(url: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(f"--screenshot={path}", url)
    if not path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot at {path}")
    return path


class _Panels(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.panels: dict[str, dict[str, float]] = {}
        self._panel: dict[str, float] | None = None
        self._legend: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and "panel" in (a.get("class") or "").split():
            self._panel = self.panels.setdefault(a.get("data-title") or "", {})
        elif tag == "tr" and self._panel is not None and a.get("data-legend") is not None:
            self._legend = a["data-legend"]
        elif (
            tag == "td"
            and a.get("class") == "value"
            and self._panel is not None
            and self._legend is not None
        ):
            self._panel[self._legend] = float(a.get("data-value") or "nan")

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._panel = None
        elif tag == "tr":
            self._legend = None


def panel_values(dom: str) -> dict[str, dict[str, float]]:
    """panel title → {series legend → latest value}, as the page shows them."""
    parser = _Panels()
    parser.feed(dom)
    return parser.panels
