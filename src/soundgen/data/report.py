"""The report of a dataset build: ``report.json`` (for programs) and ``report.md`` (for people).

Both say how many clips and hours each split, source and category holds, which licences each source carries,
and every skipped file with its reason.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from soundgen.data.manifest import SPLITS, Clip
from soundgen.utils import atomic_write

REPORT_VERSION = 1


@dataclass
class SkippedFile:
    """A source file that gave no clip: ``reason`` is a short code (``corrupt``, ``silent``, ...), ``detail`` says
    what exactly was found."""

    source_file: str
    reason: str
    detail: str


def _tally(clips: Sequence[Clip], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Clip]] = defaultdict(list)
    for c in clips:
        groups[str(getattr(c, key))].append(c)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(groups):
        members = groups[name]
        out[name] = {
            "clips": len(members),
            "hours": round(sum(c.duration for c in members) / 3600, 6),
            "files": len({c.source_file for c in members}),
            "clips_per_split": {s: sum(1 for c in members if c.split == s) for s in SPLITS},
        }
    return out


def build_summary(
    clips: Sequence[Clip],
    skipped: Sequence[SkippedFile],
    duplicates: Sequence[dict[str, str]],
    settings: dict[str, Any],
    files: int,
) -> dict[str, Any]:
    """Everything ``report.json`` holds, as plain data.

    Args:
        clips: the clips of every split.
        skipped: files that gave no clip.
        duplicates: ``{"source_file", "id", "duplicate_of"}`` for each clip dropped as a duplicate.
        settings: the build settings (written as they are).
        files: audio files found in the sources.
    """
    splits = {
        s: {
            "clips": sum(1 for c in clips if c.split == s),
            "hours": round(sum(c.duration for c in clips if c.split == s) / 3600, 6),
            "files": len({c.source_file for c in clips if c.split == s}),
        }
        for s in SPLITS
    }
    licences: dict[str, list[str]] = defaultdict(list)
    for c in clips:
        if c.licence not in licences[c.source]:
            licences[c.source].append(c.licence)
    sources = _tally(clips, "source")
    for name, entry in sources.items():
        entry["licences"] = sorted(licences[name])
    return {
        "version": REPORT_VERSION,
        "settings": settings,
        "totals": {
            "files": files,
            "clips": len(clips),
            "hours": round(sum(c.duration for c in clips) / 3600, 6),
            "skipped": len(skipped),
            "duplicates": len(duplicates),
        },
        "splits": splits,
        "sources": sources,
        "categories": _tally(clips, "category"),
        "licences": {k: sorted(v) for k, v in sorted(licences.items())},
        "skipped_by_reason": dict(sorted(Counter(s.reason for s in skipped).items())),
        "skipped": [asdict(s) for s in sorted(skipped, key=lambda s: s.source_file)],
        "duplicates": list(duplicates),
    }


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _cell(value: Any) -> str:
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: dict[str, Any]) -> str:
    """``report.md``: the summary as tables."""
    t = summary["totals"]
    lines = [
        "# Dataset report",
        "",
        f"{t['clips']} clips, {t['hours']:.3f} hours from {t['files']} files; "
        f"{t['skipped']} files skipped, {t['duplicates']} duplicate clips removed.",
        "",
        "## Splits",
        "",
        *_table(["split", "clips", "hours", "files"], [[s, v["clips"], v["hours"], v["files"]]
                                                      for s, v in summary["splits"].items()]),
        "",
        "## Sources",
        "",
        *_table(
            ["source", "clips", "hours", "files", *SPLITS, "licences"],
            [[k, v["clips"], v["hours"], v["files"], *v["clips_per_split"].values(), ", ".join(v["licences"])]
             for k, v in summary["sources"].items()],
        ),
        "",
        "## Categories",
        "",
        *_table(
            ["category", "clips", "hours", *SPLITS],
            [[k, v["clips"], v["hours"], *v["clips_per_split"].values()] for k, v in summary["categories"].items()],
        ),
        "",
        "## Skipped files",
        "",
    ]
    if summary["skipped"]:
        lines += [", ".join(f"{k}: {n}" for k, n in summary["skipped_by_reason"].items()), ""]
        lines += _table(["file", "reason", "detail"], [[s["source_file"], s["reason"], s["detail"]]
                                                      for s in summary["skipped"]])
    else:
        lines.append("None.")
    lines += ["", "## Settings", "", "```json", json.dumps(summary["settings"], indent=2), "```", ""]
    return "\n".join(lines)


def write_reports(dataset_dir: str | Path, summary: dict[str, Any]) -> Path:
    """Write ``report.json`` and ``report.md`` atomically; return the JSON's path."""
    out = Path(dataset_dir)
    path = out / "report.json"
    with atomic_write(path, "w") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with atomic_write(out / "report.md", "w") as f:
        f.write(render_markdown(summary))
    return path
