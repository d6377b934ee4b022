"""The settings of the default corpus recipe (:func:`soundgen.data.recipes.default.run_recipe`), which its report
(:mod:`.report`) reads too."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from soundgen.data.licences import LICENCE_CHOICES, LicenceChoice
from soundgen.data.recipes.packages import DOC_ROOT, PACKAGES, SOUNDFONT_PATH
from soundgen.errors import ConfigError


@dataclass(frozen=True)
class RecipeConfig:
    """Settings of the default recipe.

    Attributes:
        out: the dataset folder (staging and work files go inside it).
        quick: build the small synthetic corpus instead of the package corpus.
        music_hours: hours of music to render from music21 scores; ``None`` renders enough for
            ``music_target_hours`` of music in all (at least 1 h).
        limit: at most this many clips per package (smoke runs); ``None`` takes everything.
        workers: processes for rendering and for the dataset build.
        max_piece_seconds: a rendered piece stops after this long.
        variants: renderings (instrument, tempo) per score.
        packages: only these corpus packages (``None``: DESIGN.md's list).
        extra_packages: also use the packages marked ``extra`` (megaglest-data, widelands-data): off by default.
        sfx_minutes: minutes per category of the procedural sound-effects library (:mod:`.library`; 0: none).
        phrase_minutes: minutes per musical family of rendered phrases (:mod:`.phrases`; 0: none).
        licences: keep clips up to this licence class (:mod:`soundgen.data.licences`): ``permissive`` is what
            the bundled model trains on, so that its output may be used commercially.
        synth_only: the procedural library (and phrases) alone, no packages or scores (``recipe synth``).
    """

    out: Path
    quick: bool = False
    music_hours: float | None = None
    limit: int | None = None
    workers: int = 2
    sample_rate: int = 16000
    seed: int = 0
    sfx_target_hours: float = 2.0
    music_target_hours: float = 5.0
    max_piece_seconds: float = 180.0
    variants: int = 2
    soundfont: Path = SOUNDFONT_PATH
    doc_root: Path = DOC_ROOT
    packages: tuple[str, ...] | None = None
    extra_packages: bool = False
    sfx_minutes: float = 30.0
    phrase_minutes: float = 60.0
    licences: LicenceChoice = "all"
    synth_only: bool = False

    @classmethod
    def tiny(cls, out: Path) -> RecipeConfig:
        """The quick synthetic corpus with one worker (tests)."""
        return cls(out=Path(out), quick=True, workers=1)

    def validate(self) -> None:
        """Raise ConfigError for values that cannot work."""
        if self.sfx_minutes < 0 or self.phrase_minutes < 0:
            raise ConfigError("minutes of synthesised effects and phrases must be >= 0")
        if self.licences not in LICENCE_CHOICES:
            raise ConfigError(f"--licences must be one of {', '.join(LICENCE_CHOICES)}, got {self.licences!r}")
        if self.music_hours is not None and self.music_hours < 0:
            raise ConfigError(f"--music-hours must be >= 0, got {self.music_hours}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be >= 1 clip per package, got {self.limit}")
        if self.workers < 1 or self.sample_rate < 8000 or self.max_piece_seconds <= 0 or self.variants < 1:
            raise ConfigError("workers >= 1, sample rate >= 8000 Hz, piece length > 0 and variants >= 1 please")
        known = {p.name for p in PACKAGES}
        unknown = sorted(set(self.packages or ()) - known)
        if unknown:
            raise ConfigError(f"unknown corpus packages {unknown}; choose from {sorted(known)}")
