"""docs/deploy.md names every setting of the server, and nothing the server does not read."""

from __future__ import annotations

import re
from pathlib import Path

from soundgen.service.settings import ServiceSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
OUTSIDE_SETTINGS = {"SOUNDGEN_HOME", "SOUNDGEN_MODEL", "SOUNDGEN_DEBUG", "SOUNDGEN_NO_PROGRESS", "SOUNDGEN_STEP_SCRIPT",
                    "SOUNDGEN_SCREENSHOT_DIR", "SOUNDGEN_AXE_JS"}


def test_every_variable_is_documented() -> None:
    text = DOC.read_text()
    fields = {f"SOUNDGEN_{name.upper()}" for name in ServiceSettings.model_fields}
    rows = set(re.findall(r"^\| `(SOUNDGEN_[A-Z_]+)` \|", text, re.M))
    assert fields - rows == set(), "settings missing from the table of docs/deploy.md"
    named = set(re.findall(r"SOUNDGEN_[A-Z_]+", text))
    assert named - fields - OUTSIDE_SETTINGS == set(), "docs/deploy.md names variables nothing reads"
