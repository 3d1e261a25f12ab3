"""Driving the browser page in headless Chromium: the browser, pages, recording, screenshots.

Chromium (Debian's ``chromium``) is driven by Playwright with ``executable_path`` (no
browser download). Its fake media flags make ``getUserMedia`` play a WAV file from its
start each time a page opens the microphone; the microphone is allowed per browser context
(``permissions=["microphone"]``), so a context without it sees a refused microphone.
Screenshots go to ``test-artifacts/web/`` at the repository's root (gitignored; CI keeps
them as artifacts).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
"""Where the tests write screenshots of each state of the page."""
AXE = Path(os.environ.get("HARKEN_AXE") or Path(__file__).resolve().parents[2]
           / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js")
"""axe-core, installed by scripts/test with npm (injected by the tests only, never served)."""
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}
"""Viewport sizes (CSS pixels) of the screenshots."""


def chromium_path() -> str:
    """The system Chromium; skips (fails under CI) when it or Playwright is missing."""
    path = os.environ.get("HARKEN_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    reason = None
    if path is None:
        reason = "Chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (pip install playwright)"
    if reason is not None:
        if os.environ.get("CI"):  # CI installs both: never skip there
            pytest.fail(reason)
        pytest.skip(reason)
    assert path is not None
    return path


@contextmanager
def launch(wav: Path) -> Iterator[Any]:
    """Headless Chromium whose fake microphone plays ``wav`` once per opening."""
    from playwright.sync_api import sync_playwright

    chromium = chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}%noloop",
            "--autoplay-policy=no-user-gesture-required"])
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(browser: Any, url: str, *, mic: bool = True, color_scheme: str = "light",
             init_script: str | None = None) -> Iterator[tuple[Any, list[str]]]:
    """A page at ``url`` in a fresh context (microphone allowed if ``mic``); its errors.

    ``init_script`` runs in the page before its own script.
    """
    context = browser.new_context(permissions=["microphone"] if mic else [],
                                  color_scheme=color_scheme, accept_downloads=True,
                                  viewport={"width": SIZES["desktop"][0],
                                            "height": SIZES["desktop"][1]})
    errors: list[str] = []
    try:
        page = context.new_page()
        if init_script is not None:
            page.add_init_script(init_script)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        yield page, errors
    finally:
        context.close()


def screenshots(page: Any, state: str) -> list[Path]:
    """Screenshots of the page's ``state`` at desktop and phone widths."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    paths = []
    for label, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        path = ARTIFACTS / f"{state}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    width, height = SIZES["desktop"]
    page.set_viewport_size({"width": width, "height": height})
    return paths


def wait_text(page: Any, selector: str, needle: str, timeout_s: float) -> str:
    """Wait until the element's text contains ``needle``; return the text."""
    page.wait_for_function(
        "([sel, needle]) => (document.querySelector(sel).textContent || '').includes(needle)",
        arg=[selector, needle], timeout=timeout_s * 1000)
    return str(page.inner_text(selector))


def record(page: Any, file_s: float, timeout_s: float) -> None:
    """Start, let the fake microphone play the whole file and a final arrive, then Stop."""
    started = time.monotonic()
    page.click("#toggle")
    page.wait_for_selector("#finals p.final", timeout=timeout_s * 1000)
    time.sleep(max(0.0, started + file_s - time.monotonic()))
    page.click("#toggle")
    page.wait_for_function("() => document.getElementById('toggle').textContent === 'Start'",
                           timeout=timeout_s * 1000)


def finals(page: Any) -> list[str]:
    """The final texts the page shows."""
    return list(page.locator("#finals p.final .text").all_inner_texts())


def axe_serious(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page, as readable lines."""
    if not AXE.exists():
        reason = f"axe-core is not installed at {AXE} (scripts/test installs it with npm)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    page.evaluate(AXE.read_text("utf-8"))  # through DevTools: not a script the page serves
    found = page.evaluate("""async () => (await axe.run(document)).violations
        .filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => `${v.id}: ${v.help} (${v.nodes.map(n => n.target.join(' ')).join(', ')})`)""")
    return list(found)
