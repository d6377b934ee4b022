"""The recipe's own report (``recipe_report.json`` / ``.md``) beside the dataset builder's report.

It says which packages were found or missing (with the apt command), the hours reached per category and
against the targets (2 h of sound effects, 5 h of music), and every package's licence and copyright holders,
which the model card must carry.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from soundgen.data.manifest import SPLITS, read_manifest
from soundgen.data.recipes.config import RecipeConfig
from soundgen.data.recipes.extract import Extraction
from soundgen.data.recipes.jobs import SCORE_SOURCE, RenderSummary
from soundgen.data.recipes.packages import PackageStatus
from soundgen.utils import atomic_write


@dataclass
class PackageLine:
    """One package in the report."""

    name: str
    role: str
    installed: bool
    extra: bool  # not in DESIGN.md's list
    licence: str  # licences of the clips taken (most used first), or of ``Files: *`` when none
    all_licences: str  # every licence the copyright file names (code, fonts, art included)
    holders: list[str]
    clips: int = 0
    hours: float = 0.0
    midi_files: int = 0
    skipped: int = 0


@dataclass
class RecipeReport:
    """Hours per category/source, targets, packages and licences (also written as JSON)."""

    mode: str
    sample_rate: int
    hours_by_category: dict[str, float]
    hours_by_source: dict[str, float]
    clips_by_category: dict[str, int]
    sfx_hours: float
    music_hours: float
    targets: dict[str, float]
    targets_met: dict[str, bool]
    packages: list[PackageLine] = field(default_factory=list)
    apt_command: str | None = None
    render_failures: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    licences: dict[str, str] = field(default_factory=dict)
    hours_by_licence: dict[str, float] = field(default_factory=dict)  # permissive / copyleft / unknown
    licence_filter: str = "all"


def _licence_hours(out: Path) -> dict[str, float]:
    from soundgen.data.licences import licence_class

    hours: dict[str, float] = {}
    for split in SPLITS:
        for clip in read_manifest(out, split):
            cls = licence_class(clip.licence)
            hours[cls] = hours.get(cls, 0.0) + clip.duration / 3600
    return {k: round(v, 4) for k, v in sorted(hours.items())}


def _kept_licences(out: Path) -> dict[str, Counter[str]]:
    """The licences of the clips each source has in the dataset (after ``--licences`` filtered them)."""
    kept: dict[str, Counter[str]] = {}
    for split in SPLITS:
        for clip in read_manifest(out, split):
            kept.setdefault(clip.source, Counter())[clip.licence.split(";")[0]] += 1
    return kept


def _dataset_hours(out: Path) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    by_cat: dict[str, float] = {}
    by_src: dict[str, float] = {}
    n_cat: dict[str, int] = {}
    for split in SPLITS:
        for clip in read_manifest(out, split):
            by_cat[clip.category] = by_cat.get(clip.category, 0.0) + clip.duration / 3600
            by_src[clip.source] = by_src.get(clip.source, 0.0) + clip.duration / 3600
            n_cat[clip.category] = n_cat.get(clip.category, 0) + 1
    ordered = sorted(by_cat, key=lambda k: -by_cat[k])
    return ({k: round(by_cat[k], 4) for k in ordered}, {k: round(v, 4) for k, v in sorted(by_src.items())},
            {k: n_cat[k] for k in ordered})


def summarize(
    out: Path,
    cfg: RecipeConfig,
    statuses: list[PackageStatus],
    command: str | None,
    extractions: dict[str, Extraction],
    rendered: RenderSummary,
    timings: dict[str, float],
) -> RecipeReport:
    """Build the report from the dataset's manifests (hours after trimming and slicing) and the run's records."""
    by_cat, by_src, n_cat = _dataset_hours(out)
    music = sum(v for k, v in by_cat.items() if k.startswith("music"))
    sfx = sum(v for k, v in by_cat.items() if not k.startswith("music"))
    lines = []
    kept = _kept_licences(out)
    for s in statuses:
        e = extractions.get(s.spec.name, Extraction())
        # the licences of the clips the dataset kept; a package whose every clip was left out by --licences
        # names the licences of what it offered, and has no hours (so no attribution is owed)
        used = kept.get(s.spec.name) or Counter(c.licence for c in e.clips) + Counter(
            c.licence.split(";")[0] for c in rendered.clips if c.source == s.spec.name
        )
        licence = ", ".join(k for k, _ in used.most_common()) or s.licence.primary
        lines.append(PackageLine(
            s.spec.name, s.spec.role, s.installed, s.spec.extra, licence, s.licence.summary, s.licence.holders[:12],
            clips=len(e.clips) + sum(1 for c in rendered.clips if c.source == s.spec.name),
            hours=round(by_src.get(s.spec.name, 0.0), 4), midi_files=len(e.midis), skipped=len(e.skipped),
        ))
    licences = {p.name: p.licence for p in lines if p.installed}
    if by_src.get("soundgen-sfx"):
        licences["soundgen-sfx"] = "CC0-1.0: soundgen's own procedural sound effects"
    if by_src.get("soundgen-phrases"):
        licences["soundgen-phrases"] = "CC0-1.0: soundgen's own phrases, rendered with FluidR3_GM (MIT)"
    if any(c.source == SCORE_SOURCE for c in rendered.clips):
        licences[SCORE_SOURCE] = "music21 corpus scores (public domain / BSD-3-Clause), rendered with FluidR3_GM"
    # The quick corpus is for smoke runs: the corpus targets do not apply to it.
    targets = {} if cfg.quick else {"sfx_hours": cfg.sfx_target_hours, "music_hours": cfg.music_target_hours}
    return RecipeReport(
        mode="quick" if cfg.quick else "packages", sample_rate=cfg.sample_rate, hours_by_category=by_cat,
        hours_by_source=by_src, clips_by_category=n_cat, sfx_hours=round(sfx, 4), music_hours=round(music, 4),
        targets=targets,
        targets_met={k: (sfx if k == "sfx_hours" else music) >= v for k, v in targets.items()},
        packages=lines, apt_command=command, render_failures=len(rendered.failures),
        timings={k: round(v, 1) for k, v in timings.items()}, licences=licences,
        hours_by_licence=_licence_hours(out), licence_filter=cfg.licences,
    )


def render_markdown(r: RecipeReport) -> str:
    """The report as Markdown."""
    lines = [f"# Default corpus recipe ({r.mode})", ""]
    for key, label in (("sfx_hours", "sound effects"), ("music_hours", "music")):
        reached = r.sfx_hours if key == "sfx_hours" else r.music_hours
        if key not in r.targets:
            lines.append(f"- {label}: {reached:.3f} h")
            continue
        mark = "met" if r.targets_met[key] else "NOT met"
        lines.append(f"- {label}: {reached:.2f} h of {r.targets[key]:.1f} h target ({mark})")
    lines.append(f"- time: {', '.join(f'{k} {v:.0f} s' for k, v in r.timings.items())}")
    if r.apt_command:
        lines += ["", "Missing packages; add them with:", "", f"    {r.apt_command}"]
    lines += ["", f"## Hours per licence class (clips kept: --licences {r.licence_filter})", "",
              "| class | hours |", "|---|---:|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in r.hours_by_licence.items()]
    lines += ["", "## Hours per source", "", "| source | hours |", "|---|---:|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in r.hours_by_source.items()]
    lines += ["", "## Hours per category", "", "| category | clips | hours |", "|---|---:|---:|"]
    lines += [f"| {k} | {r.clips_by_category[k]} | {v:.3f} |" for k, v in r.hours_by_category.items()]
    lines += ["", "## Packages", "", "Packages marked * are additions to DESIGN.md's list (its packages hold too "
              "few sound effects for the 2 h target).", "",
              "| package | role | installed | clips | hours | licence of the clips |", "|---|---|---|---:|---:|---|"]
    lines += [f"| {p.name}{' *' if p.extra else ''} | {p.role} | {'yes' if p.installed else 'no'} | {p.clips} | "
              f"{p.hours:.3f} | {p.licence} |" for p in r.packages]
    # owed only for the packages whose clips the dataset holds (the licence filter may have left a package out)
    owed = [p for p in r.packages if p.installed and p.holders and p.hours > 0]
    lines += ["", "## Attributions", ""]
    lines += [f"- **{p.name}** ({p.licence}): " + "; ".join(p.holders) for p in owed]
    return "\n".join(lines) + "\n"


def write_recipe_report(out: Path, report: RecipeReport) -> Path:
    """Write ``recipe_report.json`` and ``recipe_report.md`` into ``out`` atomically; return the JSON path."""
    data: dict[str, Any] = asdict(report)
    path = out / "recipe_report.json"
    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with atomic_write(out / "recipe_report.md", "w") as f:
        f.write(render_markdown(report))
    return path
