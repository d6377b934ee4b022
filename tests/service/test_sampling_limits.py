"""One set of sampling limits: the pipeline, the CLI, the evaluation and the API refuse the same values, at the
same bounds, and the API's published ranges are those limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from svc_helpers import LiveServer

from soundgen.cli.main import main
from soundgen.errors import InvalidRequestError
from soundgen.lm.sampling_params import LIMITS, Limit, SamplingParams
from soundgen.pipeline import GenerationRequest, TextToSound

G = "/api/v1/generations"
FLAGS = {"temperature": "--temperature", "top_k": "--top-k", "top_p": "--top-p", "cfg_coef": "--cfg", "seed": "--seed"}


def _outside(limit: Limit) -> list[float]:
    """A value just below and one just above the range."""
    step = 1 if limit.integer else 0.5
    return [limit.minimum - step, limit.maximum + step]


def _bound(limit: Limit, value: float) -> str:
    """The bound ``value`` breaks, as every message writes it."""
    bound = limit.minimum if value < limit.minimum else limit.maximum
    return str(int(bound)) if float(bound).is_integer() else str(bound)


@pytest.fixture(scope="module")
def tts() -> TextToSound:
    return TextToSound.tiny_random()


CASES = [(name, int(v) if LIMITS[name].integer else v) for name in LIMITS for v in _outside(LIMITS[name])]


@pytest.mark.parametrize(("name", "value"), CASES)
def test_every_entry_point_refuses_the_same_values(
    server: LiveServer, tts: TextToSound, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, value: float
) -> None:
    bound = _bound(LIMITS[name], value)
    with pytest.raises(InvalidRequestError, match=f"{name} must be .*{bound}"):
        SamplingParams(**{name: value}).check()
    with pytest.raises(InvalidRequestError, match=f"{name} must be .*{bound}"):
        GenerationRequest("rain", duration=0.05, **{name: value}).check()
    with pytest.raises(InvalidRequestError, match=f"{name} must be .*{bound}"):
        tts.generate_batch(["rain"], 0.05, SamplingParams(**{name: value}))

    flag = f"{FLAGS[name]}={value}"
    none = str(tmp_path / "none")  # refused before any of these is read
    assert main(["generate", "rain", flag, "--model", none, "-o", str(tmp_path / "x.wav")]) == 2
    assert main(["eval", "generation", flag, "--model", none, "--prompts", none, "--data", none]) == 2
    for line in capsys.readouterr().err.splitlines():
        assert line.startswith(f"soundgen: error: {name} must be ") and bound in line, line

    c = server.client()
    r = c.post(G, json={"prompt": "rain", name: value})
    assert r.status_code == 422 and name in r.json()["error"] and bound in r.json()["error"], r.text
    r = c.post(f"{G}/batch", json={"prompts": ["rain", "wind"], name: value})
    assert r.status_code == 422 and name in r.json()["error"] and bound in r.json()["error"], r.text


def test_the_bounds_themselves_are_allowed_and_published(server: LiveServer) -> None:
    from soundgen.service.schemas import GenerationCreate

    for name, limit in LIMITS.items():
        for value in (limit.minimum, limit.maximum):
            value = int(value) if limit.integer else value
            SamplingParams(**{name: value}).check()
            GenerationRequest("rain", **{name: value}).check()
            GenerationCreate.model_validate({"prompt": "rain", name: value})
    settings = server.client().get("/api/v1/info").json()["settings"]
    for name, limit in LIMITS.items():
        assert (settings[name]["minimum"], settings[name]["maximum"]) == (limit.minimum, limit.maximum)
        assert settings[name]["default"] == getattr(SamplingParams(), name)


def test_the_page_shows_the_defaults_before_the_api_answers() -> None:
    """The page's controls start at the defaults (the API's /info replaces them once it answers; until then, or if
    it does not, a sound made from the page must still be made with the defaults)."""
    import re

    import soundgen.service as service

    page = (Path(service.__file__).parent / "web" / "index.html").read_text()
    for name, element in {"cfg_coef": "cfg", "temperature": "temperature", "top_k": "top-k", "top_p": "top-p"}.items():
        tag = re.search(rf'<input id="{element}" [^>]*>', page)
        assert tag is not None, element
        value = re.search(r'value="([^"]*)"', tag.group(0))
        assert value is not None and float(value.group(1)) == getattr(SamplingParams(), name), (name, tag.group(0))
