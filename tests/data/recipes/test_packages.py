"""Package detection, licences from copyright files and the apt command, on a fake doc root."""

from __future__ import annotations

import re
from pathlib import Path

from soundgen.data.recipes.packages import PACKAGES, PackageSpec, apt_command, detect_packages, read_copyright

SPECS = [
    PackageSpec("freedoom", "sfx", "Freedoom"),
    PackageSpec("hedgewars-data", "sfx", "Hedgewars"),
    PackageSpec("naev-data", "music", "Naev"),
]
DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: freedoom

Files: *
Copyright: 2001-2019 Contributors to the Freedoom project
License: BSD-3-Clause
 Redistribution and use in source and binary forms ...

Files: sounds/dsbarexp.wav
 sounds/extra/*
Copyright: 2010 Some Sound Designer
License: CC-BY-3.0

Files: debian/*
Copyright: 2006 A Packager
License: GPL-2+
"""
FREE_TEXT = """This package was debianized by someone.
Copyright (C) 2004-2018 Andrey Korotaev
This program is free software; you can redistribute it under the terms of the
GNU General Public License as published by the Free Software Foundation; version 2 of the License.
"""


def fake_doc_root(tmp_path: Path) -> Path:
    root = tmp_path / "doc"
    (root / "freedoom").mkdir(parents=True)
    (root / "freedoom" / "copyright").write_text(DEP5)
    (root / "hedgewars-data").mkdir()
    (root / "hedgewars-data" / "copyright").write_text(FREE_TEXT)
    return root


def test_detection_by_doc_root_and_the_apt_command(tmp_path: Path) -> None:
    statuses = detect_packages(SPECS, doc_root=fake_doc_root(tmp_path), is_installed=None)
    assert [(s.spec.name, s.installed) for s in statuses] == [
        ("freedoom", True), ("hedgewars-data", True), ("naev-data", False)
    ]
    assert apt_command(statuses) == "sudo apt-get install -y naev-data"
    assert apt_command(statuses[:2]) is None


def test_injected_installed_check_wins_over_the_doc_root(tmp_path: Path) -> None:
    statuses = detect_packages(SPECS, doc_root=fake_doc_root(tmp_path), is_installed=lambda n: n == "naev-data")
    assert [s.installed for s in statuses] == [False, False, True]
    assert apt_command(statuses) == "sudo apt-get install -y freedoom hedgewars-data"


def test_dep5_licences_holders_and_per_file_patterns(tmp_path: Path) -> None:
    lic = read_copyright(fake_doc_root(tmp_path) / "freedoom" / "copyright")
    assert lic.summary == "BSD-3-Clause, CC-BY-3.0"  # debian/* is the packaging's, not the audio's
    assert lic.holders == ["2001-2019 Contributors to the Freedoom project", "2010 Some Sound Designer"]
    assert lic.for_path("/usr/share/games/freedoom/sounds/dsbarexp.wav") == "CC-BY-3.0"
    assert lic.for_path("/usr/share/games/freedoom/sounds/extra/a.ogg") == "CC-BY-3.0"
    assert lic.for_path("/usr/share/games/doom/freedoom2.wad::DSPISTOL") == "BSD-3-Clause"


def test_free_text_copyright_and_missing_file(tmp_path: Path) -> None:
    lic = read_copyright(fake_doc_root(tmp_path) / "hedgewars-data" / "copyright")
    assert lic.summary == "GPL-2" and lic.holders == ["Copyright (C) 2004-2018 Andrey Korotaev"]
    missing = read_copyright(tmp_path / "nope" / "copyright")
    assert missing.summary == "unknown" and missing.for_path("/x.ogg") == "unknown"


def test_the_makefile_installs_every_corpus_package() -> None:
    """`make default-model` installs the recipe's packages (CORPUS_PACKAGES): the two lists must not drift."""
    text = (Path(__file__).resolve().parents[3] / "Makefile").read_text().replace("\\\n", " ")
    found = re.search(r"^CORPUS_PACKAGES := (.*)$", text, re.M)
    assert found is not None
    assert set(found.group(1).split()) == {p.name for p in PACKAGES if p.role != "soundfont"}
