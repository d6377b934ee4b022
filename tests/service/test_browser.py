"""End to end in headless Chromium (Debian's package) driven by Playwright: prompt, live progress, player,
history after a reload, the key dialog of a server that needs one, and screenshots at phone and desktop size."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any

import pytest
from svc_helpers import SCREENSHOT_DIRS, LiveServer, start_server

from soundgen.cli.main import main
from soundgen.service.settings import ServiceSettings

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="needs Debian's chromium (apt-get install -y chromium)")

# Records every value the progress bars of the page take, to check the bar really went up to 100 %.
OBSERVE = """() => {
  window.__progress = [];
  new MutationObserver((records) => {
    for (const r of records) {
      const el = r.target.closest && r.target.closest('[role=progressbar]');
      if (el) window.__progress.push(Number(el.getAttribute('aria-valuenow')));
      for (const n of r.addedNodes || []) if (n.querySelectorAll)
        for (const b of n.querySelectorAll('[role=progressbar]'))
          window.__progress.push(Number(b.getAttribute('aria-valuenow')));
    }
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['aria-valuenow']});
}"""


def shots_dir(tmp_path: Path) -> Path:
    """Where a test saves its screenshots: $SOUNDGEN_SCREENSHOT_DIR, else its tmp dir (listed at the end of the run by
    conftest.py, so that a reviewer finds them)."""
    path = Path(os.environ.get("SOUNDGEN_SCREENSHOT_DIR", tmp_path))
    path.mkdir(parents=True, exist_ok=True)
    SCREENSHOT_DIRS.add(path)
    return path


def test_prompt_progress_player_history(browser: Any, server: LiveServer, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server.base_url)
    page.wait_for_selector("#examples .chip")
    assert "UNTRAINED" in page.inner_text("#warning")
    page.evaluate(OBSERVE)
    page.fill("#prompt", "rain on a tin roof")
    page.fill("#duration", "20")  # a range input takes fill(); 20 s of audio: a second or two of progress
    page.click("#submit")
    card = page.locator("article.job").first
    card.locator(".job-title", has_text="rain on a tin roof").wait_for()
    page.wait_for_selector("article.job[data-state=succeeded] audio", timeout=60_000)
    seen = page.evaluate("window.__progress")
    assert seen and seen[-1] == 100 and seen == sorted(seen) and len(set(seen)) >= 3, seen
    page.wait_for_function("() => { const a = document.querySelector('article.job audio');"
                           " return a && a.readyState >= 1 && a.duration > 19.5 && a.duration < 20.5; }")
    page.wait_for_function("() => document.querySelector('article.job img').naturalWidth === 640")
    assert page.locator("article.job").first.get_by_role("button", name="MP3").is_visible()
    page.screenshot(path=str(shots_dir(tmp_path) / "desktop.png"), full_page=True)

    page.reload()
    page.locator("article.job[data-state=succeeded] .job-title", has_text="rain on a tin roof").wait_for()
    with page.expect_download() as dl:
        page.locator("article.job").first.get_by_role("button", name="FLAC").click()
    assert re.fullmatch(r"rain-on-a-tin-roof_s\d+_1\.flac", dl.value.suggested_filename)

    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                             color_scheme="dark")
    phone.goto(server.base_url)
    phone.locator("article.job[data-state=succeeded] img").first.wait_for()
    phone.wait_for_function("() => document.querySelector('article.job img').naturalWidth === 640")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width} px)"
    phone.screenshot(path=str(shots_dir(tmp_path) / "phone.png"), full_page=True)
    page.close()
    phone.close()


def test_page_asks_for_a_key_when_the_server_needs_one(browser: Any, tmp_path: Path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["keys", "create", "--name", "browser", "--data-dir", str(tmp_path)]) == 0
    key = out.getvalue().strip().splitlines()[-1]
    live = start_server(ServiceSettings.tiny(tmp_path).model_copy(update={"require_auth": True}))
    try:
        page = browser.new_page()
        page.goto(live.base_url)
        page.wait_for_selector("#key-dialog[open]")
        page.fill("#key-input", key)
        page.click("#key-save")
        page.wait_for_selector("#live.on")  # the WebSocket authenticated with the key
        page.fill("#prompt", "a key-holder's sound")
        page.fill("#duration", "0.5")
        page.click("#submit")
        page.wait_for_function("() => { const a = document.querySelector('article.job[data-state=succeeded] audio');"
                               " return a && a.src.startsWith('blob:') && a.readyState >= 1; }", timeout=60_000)
        page.close()
    finally:
        live.stop()
