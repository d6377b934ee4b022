"""Issue 17 in headless Chromium, what a user expects beyond the first page: the place in the queue and the time
left, a page per sound behind a shareable link (for its owner only), a zip of a job, a player you can see and seek,
a batch of prompts, and settings that say what they do. Each test saves screenshots at 1280x900 and 390x844 to
$SOUNDGEN_SCREENSHOT_DIR (or its pytest tmp dir) and prints where."""

from __future__ import annotations

import contextlib
import io
import re
import time
import zipfile
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import httpx
import pytest
from svc_helpers import LiveServer, start_server, wait_final
from test_browser import CHROMIUM, shots_dir
from test_browser_page import axe_script

from soundgen.cli.main import main
from soundgen.service.settings import ServiceSettings

G = "/api/v1/generations"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="needs Debian's chromium (apt-get install -y chromium)")


def new_page(browser: Any, phone: bool = False, key: str | None = None) -> Any:
    if phone:
        page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    else:
        page = browser.new_page(viewport=DESKTOP)
    if key:
        page.add_init_script(f"localStorage.setItem('soundgen.key', {key!r})")
    return page


def both_sizes(browser: Any, url: str, name: str, tmp_path: Path, ready: str, key: str | None = None) -> None:
    """Screenshots of ``url`` at desktop and phone size, once ``ready`` (a selector) shows; no sideways scroll."""
    for phone in (False, True):
        page = new_page(browser, phone, key)
        page.goto(url)
        page.wait_for_selector(ready)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= (390 if phone else 1280), f"{name}: the page scrolls sideways ({width} px)"
        path = shots_dir(tmp_path) / f"{name}-{'phone' if phone else 'desktop'}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        page.close()


def axe_violations(page: Any) -> list[Any]:
    """axe-core's WCAG 2.1 A/AA violations of the page (none checked where axe-core is not installed)."""
    axe = axe_script()
    if axe is None:
        return []
    page.add_script_tag(path=str(axe))
    found: list[Any] = page.evaluate("async () => (await axe.run(document, {runOnly: {type: 'tag', values: "
                                     "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations.map("
                                     "(v) => [v.id, v.nodes.map((n) => n.target.join(' ')).slice(0, 3)])")
    return found


def open_main(browser: Any, server: LiveServer, phone: bool = False) -> Any:
    page = new_page(browser, phone)
    page.goto(server.base_url)
    page.wait_for_selector("#examples .chip")
    return page


def test_queued_and_running_cards_say_their_place_and_time_left(browser: Any, server: LiveServer,
                                                               tmp_path: Path) -> None:
    c = server.client()
    blocker = c.post(G, json={"prompt": "a long hum ahead", "duration": 300.0}).json()
    try:
        deadline = time.monotonic() + 30
        while c.get(f"{G}/{blocker['id']}").json()["step"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        page = open_main(browser, server)
        page.fill("#prompt", "second in line")
        page.fill("#duration", "0.5")
        page.click("#submit")
        page.fill("#prompt", "third in line")
        page.click("#submit")
        second = page.locator("article.job[data-state=queued]", has_text="second in line")
        third = page.locator("article.job[data-state=queued]", has_text="third in line")
        second.locator(".pct", has_text="next in the queue · done in").wait_for(timeout=10_000)
        third.locator(".pct", has_text="#2 in the queue · done in").wait_for(timeout=10_000)
        assert "#2 in the queue" in (third.get_by_role("progressbar").get_attribute("aria-valuetext") or "")
        running = page.locator(f"article.job[data-job='{blocker['id']}']")
        left = re.compile(r"\d+% · \d+/\d+ · (about \d+ (s|min)|under a second) left")
        running.locator(".pct", has_text=left).wait_for()
        both_sizes(browser, server.base_url, "queue", tmp_path, "article.job[data-state=queued] .pct")
        own = new_page(browser)  # the page of a queued sound follows it until it is there
        own.goto(f"{server.base_url}/sound/{third.get_attribute('data-job')}")
        own.locator("article.job .pct", has_text="#2 in the queue").wait_for()
        assert c.post(f"{G}/{blocker['id']}/cancel").status_code == 200
        page.locator("article.job[data-state=succeeded]", has_text="third in line").wait_for(timeout=60_000)
        own.locator("article.job[data-state=succeeded] [role=slider]").wait_for(timeout=30_000)
        own.close()
        page.close()
    finally:
        c.post(f"{G}/{blocker['id']}/cancel")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """A server that needs a key, with the keys of two people."""
    data = tmp_path_factory.mktemp("share")
    keys = {}
    for name in ("alice", "bob"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["keys", "create", "--name", name, "--data-dir", str(data)]) == 0
        keys[name] = out.getvalue().strip().splitlines()[-1]
    live = start_server(ServiceSettings.tiny(data).model_copy(update={"require_auth": True}))
    yield live, keys
    live.stop()


def test_a_sound_has_a_page_for_its_owner_and_nothing_for_anyone_else(
        browser: Any, keyed: tuple[LiveServer, dict[str, str]], tmp_path: Path) -> None:
    live, keys = keyed
    alice = live.client(keys["alice"])
    secret = "alice's secret thunder"
    job = wait_final(alice, alice.post(G, json={"prompt": secret, "duration": 1.0, "count": 2}).json()["id"])
    link = f"{live.base_url}/sound/{job['id']}/2"

    page = new_page(browser, key=keys["alice"])  # her page: the card's link leads to the sound's page
    page.goto(live.base_url)
    card = page.locator(f"article.job[data-job='{job['id']}']")
    card.wait_for()
    card.get_by_role("link", name=f"link to “{secret}” #2").click()
    page.wait_for_url(link)
    page.wait_for_function("() => { const a = document.querySelector('article.job audio');"
                           " return a && a.src.startsWith('blob:') && a.readyState >= 1; }", timeout=30_000)
    assert page.locator(".result").count() == 1 and page.locator(".result").get_attribute("data-index") == "1"
    assert page.title() == f"{secret} · soundgen" and secret in page.inner_text("main")
    page.goto(f"{live.base_url}/sound/{job['id']}")  # the whole job: both sounds and the zip
    page.locator(".result").nth(1).wait_for()
    assert page.get_by_role("button", name="ZIP of WAV").is_visible()
    assert not axe_violations(page)
    page.close()
    both_sizes(browser, link, "sound-page", tmp_path, "article.job img", key=keys["alice"])

    for who in ("bob", None):  # another key, and no key at all: not a word of it
        seen: list[str] = []
        page = new_page(browser, key=keys["bob"] if who else None)
        page.on("response", lambda r, seen=seen: seen.append(r.text() if "/api/" in r.url else ""))
        page.goto(link)
        if who is None:
            page.wait_for_selector("#key-dialog[open]")
        page.locator("[data-state=missing]").wait_for()
        assert "No sound at this link" in page.inner_text("main")
        assert secret not in page.content() and not any(secret in body for body in seen)
        assert page.locator("audio, img").count() == 0
        if who:
            assert not axe_violations(page)
        page.screenshot(path=str(shots_dir(tmp_path) / f"sound-refused-{who or 'no-key'}.png"))
        page.close()
    # The page itself is the same file for every address: it cannot tell whether a job exists.
    assert httpx.get(link).text == httpx.get(f"{live.base_url}/sound/{'0' * 32}/2").text
    assert httpx.get(link).headers["x-robots-tag"] == "noindex"
    bob = live.client(keys["bob"])
    assert bob.get(f"{G}/{job['id']}").status_code == 404 == bob.get(job["archive_url"]).status_code
    print(f"screenshots: {shots_dir(tmp_path)}")


def test_the_picture_seeks_and_the_keyboard_plays(browser: Any, server: LiveServer) -> None:
    c = server.client()
    job = wait_final(c, c.post(G, json={"prompt": "a seekable drone", "duration": 4.0}).json()["id"])
    page = open_main(browser, server)
    card = page.locator(f"article.job[data-job='{job['id']}']")
    slider = card.get_by_role("slider", name="position in “a seekable drone”")
    slider.wait_for()
    page.wait_for_function("id => document.querySelector(`[data-job='${id}'] audio`).readyState >= 1", arg=job["id"])
    current = f"() => document.querySelector(\"[data-job='{job['id']}'] audio\").currentTime"
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    assert abs(page.evaluate(current) - 2.0) < 0.1
    head = card.locator(".playhead")
    assert abs(head.bounding_box()["x"] - (box["x"] + box["width"] * 0.5)) < 4  # the playhead is where it was clicked
    assert float(slider.get_attribute("aria-valuenow") or "0") == pytest.approx(2.0, abs=0.1)
    assert slider.evaluate("e => e === document.activeElement")
    page.keyboard.press("ArrowRight")
    assert abs(page.evaluate(current) - 3.0) < 0.1
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert abs(page.evaluate(current) - 1.0) < 0.1
    page.keyboard.press("Home")
    assert page.evaluate(current) == 0
    page.keyboard.press("Space")
    page.wait_for_function(f"() => ({current})() > 0.3", timeout=10_000)  # it plays, and the playhead follows
    assert "playing" in (slider.get_attribute("aria-valuetext") or "")
    assert head.bounding_box()["x"] > box["x"] + 2
    page.keyboard.press("Space")
    paused = page.evaluate(current)
    time.sleep(0.3)
    assert page.evaluate(current) == paused
    page.close()


def test_a_job_of_several_sounds_downloads_as_one_zip(browser: Any, server: LiveServer) -> None:
    c = server.client()
    job = wait_final(c, c.post(G, json={"prompt": "three clicks", "duration": 0.3, "count": 3}).json()["id"])
    page = open_main(browser, server)
    card = page.locator(f"article.job[data-job='{job['id']}']")
    card.wait_for()
    with page.expect_download() as dl:
        card.get_by_role("button", name="ZIP of MP3").click()
    assert dl.value.suggested_filename == f"three-clicks_s{job['seed']}.zip"
    with zipfile.ZipFile(dl.value.path()) as archive:
        assert archive.namelist() == [f"three-clicks_s{job['seed']}_{i}.mp3" for i in (1, 2, 3)]
    single = wait_final(c, c.post(G, json={"prompt": "only one", "duration": 0.1}).json()["id"])
    page.reload()
    page.locator(f"article.job[data-job='{single['id']}']").wait_for()
    assert page.locator(f"article.job[data-job='{single['id']}'] .zip-row").count() == 0  # one sound: no zip
    page.close()


def test_a_batch_of_prompts_one_per_line(browser: Any, server: LiveServer, tmp_path: Path) -> None:
    page = open_main(browser, server)
    before = page.locator("article.job").count()
    page.check("#batch")
    page.fill("#duration", "0.5")
    too_long = " ".join(["wind"] * 40)  # the tiny model reads at most 32 words
    page.fill("#prompt", f"batch one\n\n{too_long}\nbatch three")
    page.wait_for_function("() => document.querySelector('#prompt-count').textContent.startsWith('3 / 16 prompts')")
    page.wait_for_function("() => document.querySelector('#prompt-count').classList.contains('over')")
    page.click("#submit")
    assert "Line 3 is 40 tokens long" in page.inner_text("#form-error")  # the line the user sees (blank ones count)
    # The server says the same when the page could not count (here: the counting route fails).
    page.route("**/api/v1/prompts/count", lambda route: route.abort("connectionrefused"))
    page.fill("#prompt", f"batch one\n\n{too_long} again\nbatch three")
    page.click("#submit")
    page.locator("#form-error", has_text="Line 3: the prompt is 41 tokens long").wait_for()
    assert page.locator("article.job").count() == before and "batch three" in page.input_value("#prompt")
    page.unroute("**/api/v1/prompts/count")
    page.screenshot(path=str(shots_dir(tmp_path) / "batch-error-desktop.png"))
    page.fill("#prompt", "batch one\n\nbatch two\nbatch three")
    page.click("#submit")
    page.wait_for_function("n => document.querySelectorAll('article.job').length >= n + 3", arg=before)
    titles = [t for t in page.locator("article.job .job-title").all_inner_texts() if t.startswith("batch ")]
    assert titles == ["batch three", "batch two", "batch one"]  # newest first, as after a reload
    page.locator("article.job[data-state=succeeded]", has_text="batch three").wait_for(timeout=60_000)
    page.close()
    phone = open_main(browser, server, phone=True)
    phone.check("#batch")
    phone.fill("#prompt", "rain on a tin roof\na door slams shut")
    phone.screenshot(path=str(shots_dir(tmp_path) / "batch-phone.png"), full_page=True)
    phone.close()


def test_each_setting_says_what_it_does_and_shows_the_models_default(browser: Any, server: LiveServer,
                                                                    tmp_path: Path) -> None:
    from soundgen.pipeline import GenerationRequest

    model = {f.name: f.default for f in fields(GenerationRequest)}
    info = server.client().get("/api/v1/info").json()["settings"]
    for name in ("duration", "cfg_coef", "temperature", "top_k", "top_p"):
        assert info[name]["default"] == model[name], name  # the API's defaults are the pipeline's
    page = open_main(browser, server)
    page.click("details.advanced summary")
    controls = {"cfg": "cfg_coef", "temperature": "temperature", "top-k": "top_k", "top-p": "top_p"}
    for control, name in controls.items():
        help_id = page.get_attribute(f"#{control}", "aria-describedby")
        text = page.inner_text(f"#{help_id}")
        assert page.is_visible(f"#{help_id}") and len(text) > 40 and f"default {model[name]:g}" in text, (control, text)
        assert float(page.input_value(f"#{control}")) == model[name]
    assert "same sound again" in page.inner_text("#" + (page.get_attribute("#seed", "aria-describedby") or ""))
    page.fill("#top-k", "7")
    page.fill("#temperature", "1.5")
    page.click("#reset-settings")
    assert page.input_value("#top-k") == str(model["top_k"])
    assert float(page.input_value("#temperature")) == model["temperature"]
    both_sizes(browser, server.base_url, "form", tmp_path, "#examples .chip")
    page.screenshot(path=str(shots_dir(tmp_path) / "advanced-desktop.png"), full_page=True)
    page.close()


def test_a_negative_prompt_from_the_advanced_section(browser: Any, server: LiveServer) -> None:
    page = open_main(browser, server)
    assert not page.is_visible("#negative-prompt")  # inside the closed Advanced section
    page.click("details.advanced summary")
    field = page.get_by_role("textbox", name="Negative prompt")
    assert "steers away" in page.inner_text("#" + (field.get_attribute("aria-describedby") or ""))
    page.fill("#prompt", "a quiet forest")
    page.fill("#duration", "0.5")
    field.fill(" ".join(["birds"] * 40))  # over the tiny model's 32 words: refused, nothing lost
    n = page.locator("article.job").count()
    page.click("#submit")
    page.locator("#form-error", has_text="negative prompt").wait_for()
    assert page.locator("article.job").count() == n and page.input_value("#prompt") == "a quiet forest"
    field.fill("birds, wind")
    page.click("#submit")
    card = page.locator("article.job[data-state=succeeded]", has_text="a quiet forest").first
    card.wait_for(timeout=60_000)
    assert "negative prompt: birds, wind" in card.inner_text()
    job = server.client().get(f"{G}/{card.get_attribute('data-job')}").json()
    assert job["negative_prompt"] == "birds, wind"
    field.fill("")
    card.get_by_role("button", name="Reuse settings").click()
    assert page.input_value("#negative-prompt") == "birds, wind"
    page.close()


def _sine_wav(path: Path, seconds: float, rate: int = 16000) -> Path:
    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.5 * np.sin(2 * np.pi * 330 * t), rate)
    return path


def _audio_seconds(page: Any, job_id: str) -> float:
    page.wait_for_function("id => { const a = document.querySelector(`[data-job='${id}'] audio`);"
                           " return a && a.readyState >= 1; }", arg=job_id, timeout=30_000)
    return float(page.evaluate("id => document.querySelector(`[data-job='${id}'] audio`).duration", job_id))


def test_continue_an_uploaded_clip_then_extend_the_result(browser: Any, server: LiveServer, tmp_path: Path) -> None:
    page = open_main(browser, server)
    n = page.locator("article.job").count()
    page.set_input_files("#clip-input", str(_sine_wav(tmp_path / "too-long.wav", 31.0, rate=8000)))
    page.locator("#form-error", has_text="31.0 s long; at most 30 s can be continued").wait_for()
    assert page.is_hidden("#continue-chip")
    page.set_input_files("#clip-input", str(_sine_wav(tmp_path / "my clip.wav", 1.5)))
    page.locator("#continue-chip", has_text="Continuing my clip.wav (1.5 s)").wait_for()
    assert page.inner_text("#duration-label") == "Seconds to add"
    page.fill("#prompt", "the clip goes on")
    page.fill("#duration", "1")
    page.screenshot(path=str(shots_dir(tmp_path) / "continue-desktop.png"))
    page.click("#submit")
    card = page.locator("article.job[data-state=succeeded]", has_text="the clip goes on").first
    card.wait_for(timeout=60_000)
    assert page.locator("article.job").count() == n + 1 and page.is_hidden("#continue-chip")
    assert "continues your clip (1.5 s)" in card.inner_text() and "1.5 + 1.0 s" in card.inner_text()
    job_id = card.get_attribute("data-job") or ""
    assert abs(_audio_seconds(page, job_id) - 2.5) < 0.1

    card.get_by_role("button", name="extend “the clip goes on”").click()
    seconds = card.get_by_role("spinbutton", name="seconds to add to “the clip goes on”")
    seconds.fill("1")
    card.get_by_role("button", name="Add").click()
    longer = page.locator("article.job", has_text="extends an earlier sound").first
    longer.wait_for()
    longer_id = longer.get_attribute("data-job") or ""
    page.locator(f"article.job[data-job='{longer_id}'][data-state=succeeded]").wait_for(timeout=60_000)
    assert longer_id != job_id and abs(_audio_seconds(page, longer_id) - 3.5) < 0.1
    assert longer.get_by_role("link", name="an earlier sound").get_attribute("href") == f"/sound/{job_id}/1"

    page.locator(f"article.job[data-job='{longer_id}']").get_by_role(
        "button", name="continue “the clip goes on” with a new prompt").click()
    page.locator("#continue-chip", has_text="Continuing “the clip goes on” (3.5 s)").wait_for()
    page.click("#continue-clear")
    assert page.is_hidden("#continue-chip") and page.inner_text("#duration-label") == "Duration"
    page.close()
    phone = open_main(browser, server, phone=True)
    phone.set_input_files("#clip-input", str(tmp_path / "my clip.wav"))
    phone.locator("#continue-chip").wait_for()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.screenshot(path=str(shots_dir(tmp_path) / "continue-phone.png"), full_page=True)
    phone.close()
