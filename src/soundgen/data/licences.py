"""Licence classes of clips: which a commercial user may clear, which share alike, which are unknown.

A clip's licence is free text ("CC0-1.0", "GPL-2+, CC-BY-SA-3.0", "public domain; rendered with FluidR3_GM
(MIT)"). :func:`licence_class` reads every part of it: a clip is ``permissive`` only when every part is (CC0,
public domain, CC-BY without SA/NC, MIT/BSD/zlib/ISC/Apache-style), ``copyleft`` when the parts are permissive or
share-alike (GPL family, CC-BY-SA, ...), and ``unknown`` otherwise (no licence, non-commercial terms, anything
unrecognised). ``--licences permissive|copyleft|all`` keeps clips up to that class.
"""

from __future__ import annotations

import re
from typing import Literal

LicenceClass = Literal["permissive", "copyleft", "unknown"]
LicenceChoice = Literal["permissive", "copyleft", "all"]
LICENCE_CHOICES: tuple[LicenceChoice, ...] = ("permissive", "copyleft", "all")

_SPLIT = re.compile(r"[;,]| and | or |\|")
_PERMISSIVE = re.compile(
    r"\b(cc0|public[ -]domain|pd|cc-by(?!-?(sa|nc|nd))(-\d(\.\d)?)?|mit|expat|bsd(-\d-clause)?|zlib|isc|apache|"
    r"unlicense|wtfpl|ofl)\b"
)
_COPYLEFT = re.compile(r"\b(a?gpl|lgpl|cc-by-sa|gfdl|artistic|mpl|epl|cecill|free ?art)")
_RESTRICTED = re.compile(r"\b(nc|nd|non-?commercial|no derivatives)\b")
_NOISE = re.compile(r"^(rendered with [\w. -]+\(|\)|)$")


def _part_class(part: str) -> LicenceClass | None:
    text = part.strip().lower()
    text = re.sub(r"rendered with [^()]*\(([^)]*)\)", r"\1", text)  # "rendered with FluidR3_GM (MIT)" -> "mit"
    text = text.replace("(", " ").replace(")", " ").strip()
    if not text:
        return None
    if _RESTRICTED.search(text.replace("cc-by-nc", "nc")):
        return "unknown"
    if _COPYLEFT.search(text):
        return "copyleft"
    if _PERMISSIVE.search(text):
        return "permissive"
    return "unknown"


def licence_class(licence: str) -> LicenceClass:
    """The class of a clip's licence text (see the module docstring)."""
    classes = {c for c in (_part_class(p) for p in _SPLIT.split(licence or "")) if c is not None}
    if not classes or "unknown" in classes:
        return "unknown"
    return "copyleft" if "copyleft" in classes else "permissive"


def allowed(licence: str, choice: LicenceChoice) -> bool:
    """Whether a clip of ``licence`` is kept under ``--licences choice``."""
    if choice == "all":
        return True
    cls = licence_class(licence)
    return cls == "permissive" or (choice == "copyleft" and cls == "copyleft")
