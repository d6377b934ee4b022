"""The Debian packages of the default corpus: which are installed, their files, licences and attributions.

Nothing here installs anything: :func:`apt_command` prints the one command that adds the missing packages.
The doc root (``/usr/share/doc``), the installed-check (``dpkg-query``) and the file lister (``dpkg -L``) are
parameters so tests can run against a fake tree.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from soundgen.audio.archive import MEMBER_SEPARATOR

log = logging.getLogger(__name__)

Role = Literal["sfx", "music", "soundfont"]
DOC_ROOT = Path("/usr/share/doc")
SOUNDFONT_PACKAGE = "fluid-soundfont-gm"
SOUNDFONT_PATH = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


@dataclass(frozen=True)
class PackageSpec:
    """A Debian package of the corpus: its name, what it contributes and the game's name for captions.

    ``extra`` marks packages beyond DESIGN.md's list (freely licensed; that list holds only ~1.7 h of sound
    effects, short of the 2 h target). They are used only with ``--extra-packages``: the bundled model trains on
    DESIGN.md's list alone until the project clears more sources.
    """

    name: str
    role: Role
    title: str
    extra: bool = False


PACKAGES: tuple[PackageSpec, ...] = (
    PackageSpec("hedgewars-data", "sfx", "Hedgewars"),
    PackageSpec("supertuxkart-data", "sfx", "SuperTuxKart"),
    PackageSpec("ufoai-sound", "sfx", "UFO: Alien Invasion"),
    PackageSpec("warzone2100-data", "sfx", "Warzone 2100"),
    PackageSpec("openarena-data", "sfx", "OpenArena"),
    PackageSpec("wesnoth-1.16-data", "sfx", "Battle for Wesnoth"),
    PackageSpec("freedroidrpg-data", "sfx", "FreedroidRPG"),
    PackageSpec("freedoom", "sfx", "Freedoom"),
    PackageSpec("teeworlds-data", "sfx", "Teeworlds"),
    PackageSpec("hydrogen-drumkits", "sfx", "Hydrogen drum kits"),
    PackageSpec("colobot-common-sounds", "sfx", "Colobot"),
    PackageSpec("supertux-data", "sfx", "SuperTux"),
    PackageSpec("megaglest-data", "sfx", "MegaGlest", extra=True),
    PackageSpec("widelands-data", "sfx", "Widelands", extra=True),
    PackageSpec("warzone2100-music", "music", "Warzone 2100"),
    PackageSpec("wesnoth-1.16-music", "music", "Battle for Wesnoth"),
    PackageSpec("naev-data", "music", "Naev"),
    PackageSpec("openttd-openmsx", "music", "OpenMSX (OpenTTD)"),
    PackageSpec(SOUNDFONT_PACKAGE, "soundfont", "FluidR3 GM SoundFont"),
)


@dataclass
class Licence:
    """What a package's ``copyright`` file says: a licence summary and the copyright holders.

    Attributes:
        summary: the licence short names, the one of ``Files: *`` first (``"GPL-2+, CC-BY-SA-3.0"``);
            ``"unknown"`` when no copyright file was found.
        holders: the ``Copyright:`` lines (deduplicated, in file order).
        path: the copyright file read, if any.
    """

    summary: str = "unknown"
    holders: list[str] = field(default_factory=list)
    path: Path | None = None
    rules: list[tuple[list[str], str]] = field(default_factory=list)

    def for_path(self, path: str) -> str:
        """The licence of one installed file (``archive::member`` allowed) by the DEP-5 ``Files:`` patterns.

        Patterns name paths of the source tree, which end installed paths, so each pattern is tried against
        every tail of ``path``; as in DEP-5 the last matching stanza wins. Without a match: :attr:`summary`.
        """
        parts = [p for p in path.replace(MEMBER_SEPARATOR, "/").split("/") if p]
        tails = ["/".join(parts[i:]) for i in range(len(parts))]
        found = None
        for patterns, name in self.rules:
            if patterns != ["*"] and any(fnmatch.fnmatchcase(t, pat) for pat in patterns for t in tails):
                found = name
        return found or self.primary

    @property
    def primary(self) -> str:
        """The licence of ``Files: *`` (the first of the summary)."""
        return self.summary.split(", ", 1)[0]


@dataclass
class PackageStatus:
    """One corpus package on this machine."""

    spec: PackageSpec
    installed: bool
    licence: Licence


def dpkg_installed(name: str) -> bool:
    """True when dpkg reports ``name`` as installed (False when dpkg-query is missing)."""
    if shutil.which("dpkg-query") is None:
        return False
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True, check=False
    )
    return result.returncode == 0 and result.stdout.strip().endswith("installed") and "not-installed" not in (
        result.stdout
    )


def dpkg_files(name: str) -> list[Path]:
    """Regular files installed by package ``name`` (``dpkg -L``), empty when unknown."""
    if shutil.which("dpkg") is None:
        return []
    result = subprocess.run(["dpkg", "-L", name], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return []
    return [Path(line) for line in result.stdout.splitlines() if line.strip() and Path(line).is_file()]


def detect_packages(
    specs: tuple[PackageSpec, ...] | list[PackageSpec] = PACKAGES,
    *,
    doc_root: Path = DOC_ROOT,
    is_installed: Callable[[str], bool] | None = dpkg_installed,
) -> list[PackageStatus]:
    """Check which packages are installed and read their licences.

    Args:
        specs: the packages to check.
        doc_root: where ``PKG/copyright`` files live.
        is_installed: the installed-check; ``None`` decides by the presence of ``doc_root/PKG``.
    """
    out = []
    for spec in specs:
        doc = doc_root / spec.name
        installed = is_installed(spec.name) if is_installed is not None else doc.is_dir()
        out.append(PackageStatus(spec, installed, read_copyright(doc / "copyright")))
    return out


def apt_command(statuses: list[PackageStatus]) -> str | None:
    """The one ``apt-get install`` command that adds the missing packages, or None when none is missing."""
    missing = [s.spec.name for s in statuses if not s.installed]
    return f"sudo apt-get install -y {' '.join(missing)}" if missing else None


_DEP5_FIELD = re.compile(r"^([A-Za-z-]+):\s*(.*)$")
# Licence names recognised in free-text (non machine-readable) copyright files, most specific first.
_FREE_TEXT_LICENCES = (
    (re.compile(r"creative\s+commons\s+attribution[- ]share\s*alike\s*(\d\.\d)?", re.I), "CC-BY-SA"),
    (re.compile(r"creative\s+commons\s+attribution\s*(\d\.\d)?", re.I), "CC-BY"),
    (re.compile(r"CC0|creative\s+commons\s+zero", re.I), "CC0-1.0"),
    (re.compile(r"GNU\s+General\s+Public\s+License.{0,80}?version\s+(\d)", re.I | re.S), "GPL"),
    (re.compile(r"GNU\s+Lesser\s+General\s+Public\s+License", re.I), "LGPL"),
    (re.compile(r"public\s+domain", re.I), "public-domain"),
    (re.compile(r"BSD", re.I), "BSD"),
    (re.compile(r"MIT\s+License|Permission is hereby granted, free of charge", re.I), "MIT"),
)


def _dep5_stanzas(text: str) -> list[dict[str, str]]:
    """Split a DEP-5 file into stanzas of field -> value (continuation lines joined with newlines)."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
        elif line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
        elif m := _DEP5_FIELD.match(line):
            key = m.group(1).lower()
            current[key] = m.group(2).strip()
    if current:
        stanzas.append(current)
    return stanzas


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def _parse_dep5(text: str) -> tuple[list[str], list[str], list[tuple[list[str], str]]]:
    names: list[str] = []
    holders: list[str] = []
    rules: list[tuple[list[str], str]] = []
    for st in _dep5_stanzas(text):
        if "files" not in st:
            continue
        name = st.get("license", "").split("\n", 1)[0].strip()
        patterns = st["files"].split()
        if patterns[:1] == ["debian/*"] or not name:
            continue  # the packaging's own licence says nothing about the audio
        (names.insert(0, name) if patterns == ["*"] else names.append(name))
        rules.append((patterns, name))
        holders += [h.strip() for h in st.get("copyright", "").split("\n") if h.strip() and h.strip() != "."]
    return _dedupe(names), _dedupe(holders), rules


def _parse_free_text(text: str) -> tuple[list[str], list[str]]:
    names = []
    for pattern, name in _FREE_TEXT_LICENCES:
        m = pattern.search(text)
        if m:
            version = m.group(1) if m.groups() and m.group(1) else ""
            names.append(f"{name}-{version}" if version else name)
    holders = [ln.strip() for ln in text.splitlines() if re.match(r"\s*Copyright\s*(\(C\)|©|\d)", ln, re.I)]
    return _dedupe(names), _dedupe(holders)


def read_copyright(path: Path) -> Licence:
    """Read a Debian ``copyright`` file (DEP-5 machine-readable, or free text) into a :class:`Licence`."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return Licence()
    rules: list[tuple[list[str], str]] = []
    if text.lstrip().lower().startswith("format:"):
        names, holders, rules = _parse_dep5(text)
    else:
        names, holders = _parse_free_text(text)
    return Licence(summary=", ".join(names) if names else "unknown", holders=holders[:50], path=path, rules=rules)
