"""Issue 17 in headless Chromium: what a user expects of the page (prompt limits, seed, small defects,
accessibility). Same browser set-up as test_browser.py; screenshots go to $SOUNDGEN_SCREENSHOT_DIR."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from svc_helpers import LiveServer
from test_browser import ARGS, CHROMIUM, shots_dir

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="needs Debian's chromium (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def open_page(browser: Any, server: LiveServer, phone: bool = False) -> Any:
    if phone:
        page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    else:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server.base_url)
    page.wait_for_selector("#examples .chip")
    return page


def test_token_limit_is_shown_live_and_checked_before_submitting(browser: Any, server: LiveServer,
                                                                 tmp_path: Path) -> None:
    page = open_page(browser, server)
    jobs_before = page.locator("article.job").count()
    page.fill("#prompt", " ".join(["wind"] * 33))  # the tiny model's hashed encoder reads at most 32 words
    page.wait_for_function("() => document.querySelector('#prompt-count').textContent.startsWith('33 / 32 tokens')")
    assert "over" in (page.get_attribute("#prompt-count", "class") or "")
    page.click("#submit")
    assert "33 tokens long" in page.inner_text("#form-error")
    page.screenshot(path=str(shots_dir(tmp_path) / "token-limit.png"))
    assert page.locator("article.job").count() == jobs_before
    page.fill("#prompt", " ".join(["wind"] * 32))
    page.wait_for_function("() => document.querySelector('#prompt-count').textContent.startsWith('32 / 32 tokens')")
    page.keyboard.press("Control+Enter")  # the hint under the box says so
    page.locator("article.job[data-state=succeeded] .job-title", has_text="wind wind").first.wait_for(timeout=60_000)
    assert "Enter" in page.inner_text("#prompt-hint")
    page.close()


def test_reuse_settings_shows_the_seed_it_fixes_and_random_is_one_click(browser: Any, server: LiveServer) -> None:
    page = open_page(browser, server)
    assert page.is_visible("#seed") and page.is_checked("#seed-random") and page.is_disabled("#seed")
    assert not page.is_visible("details.advanced #seed")  # beside Generate, not inside the closed section
    page.fill("#prompt", "seeded drip")
    page.fill("#duration", "0.5")
    page.click("#submit")
    card = page.locator("article.job[data-state=succeeded]", has_text="seeded drip").first
    card.wait_for(timeout=60_000)
    seed = int(card.get_attribute("data-seed") or "-1")
    card.get_by_role("button", name="Reuse settings").click()
    assert not page.is_checked("#seed-random") and page.input_value("#seed") == str(seed)
    assert page.is_visible("#seed")
    n = page.locator("article.job").count()
    page.click("#submit")
    page.wait_for_function("n => document.querySelectorAll('article.job').length > n", arg=n)
    assert page.locator("article.job").first.get_attribute("data-seed") == str(seed)  # fixed, as shown
    page.check("#seed-random")
    assert page.is_disabled("#seed")
    page.click("#submit")
    page.wait_for_function("n => document.querySelectorAll('article.job').length > n + 1", arg=n)
    assert page.locator("article.job").first.get_attribute("data-seed") != str(seed)  # random again
    page.close()
