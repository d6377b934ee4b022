"""The page's sign-in in headless Chromium against the loopback issuer: the authorization code flow with PKCE
(the issuer checks the verifier against the challenge), the token in sessionStorage and on every request, the
signed-in subject's own sounds only, back to the page that signed in, and sign-out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from oidc_issuer import Issuer, make_key, start_issuer
from svc_helpers import LiveServer, start_server, wait_final
from test_browser import CHROMIUM, shots_dir

from soundgen.service.settings import ServiceSettings

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="needs Debian's chromium (apt-get install -y chromium)")
G = "/api/v1/generations"


@pytest.fixture(scope="module")
def signin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, LiveServer]]:
    issuer = start_issuer([make_key("rsa-1", "RS256")])
    settings = ServiceSettings.tiny(tmp_path_factory.mktemp("oidc-page")).model_copy(update={
        "oidc_issuer": issuer.url, "oidc_audience": "soundgen-api", "oidc_client_id": issuer.client_id})
    live = start_server(settings)
    yield issuer, live
    live.stop()
    issuer.stop()


def make_job(issuer: Issuer, live: LiveServer, sub: str, prompt: str) -> str:
    client = live.client(issuer.token(sub=sub))
    job_id: str = client.post(G, json={"prompt": prompt, "duration": 0.5}).json()["id"]
    assert wait_final(client, job_id)["state"] == "succeeded"
    return job_id


def test_sign_in_round_trip(browser: Any, signin: tuple[Issuer, LiveServer], tmp_path: Path) -> None:
    issuer, live = signin
    make_job(issuer, live, "alice", "alice's rain")
    make_job(issuer, live, "bob", "bob's thunder")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live.base_url)
    page.wait_for_selector("#key-dialog[open] #key-signin")
    page.screenshot(path=str(shots_dir(tmp_path) / "oidc-dialog-desktop.png"))
    tokens_before = issuer.hits.get("/realms/test/token", 0)
    page.click("#key-signin")  # to the issuer's /authorize, which signs alice in and redirects back with a code
    page.locator("article.job .job-title", has_text="alice's rain").wait_for()
    assert issuer.hits["/realms/test/token"] == tokens_before + 1
    assert "code=" not in page.url and page.url.rstrip("/") == live.base_url
    token = page.evaluate("sessionStorage.getItem('soundgen.token')")
    assert token and token.count(".") == 2 and page.evaluate("localStorage.getItem('soundgen.key')") is None
    assert page.locator("article.job .job-title", has_text="bob's thunder").count() == 0
    button = page.locator("#signin-button")
    assert button.inner_text() == "Sign out" and "alice" in (button.get_attribute("title") or "")
    # The token goes with a submission and the WebSocket too: the new sound plays when it is done.
    page.fill("#prompt", "a door slams")
    page.fill("#duration", "1")
    page.click("#submit")
    page.wait_for_selector("article.job[data-state=succeeded] audio", timeout=60_000)
    page.locator("article.job[data-state=succeeded] .job-title", has_text="a door slams").wait_for(timeout=60_000)
    button.click()  # sign out: the key dialog is back, with its sign-in
    page.wait_for_selector("#key-dialog[open] #key-signin")
    assert page.evaluate("sessionStorage.getItem('soundgen.token')") is None
    page.close()


def test_sign_in_from_the_page_of_a_sound_comes_back_to_it(browser: Any, signin: tuple[Issuer, LiveServer],
                                                            tmp_path: Path) -> None:
    issuer, live = signin
    job_id = make_job(issuer, live, "alice", "alice's wind")
    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    phone.goto(f"{live.base_url}/sound/{job_id}")
    phone.wait_for_selector("#key-dialog[open] #key-signin")
    phone.click("#key-signin")
    phone.wait_for_url(f"{live.base_url}/sound/{job_id}")
    phone.locator("article.job[data-state=succeeded] audio").first.wait_for()
    assert "alice's wind" in phone.inner_text("#sound")
    phone.screenshot(path=str(shots_dir(tmp_path) / "oidc-sound-phone.png"), full_page=True)
    # A stale callback (a state this tab did not send) is refused in words, not a traceback or a loop.
    phone.goto(f"{live.base_url}/?code=forged&state=forged")
    phone.wait_for_selector("#key-dialog[open]")
    assert "does not belong" in phone.inner_text("#key-error")
    phone.close()
