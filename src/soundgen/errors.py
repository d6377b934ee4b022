"""Errors a user can act on.

Every error that reaches a user derives from :class:`SoundgenError`; its message says what was wrong and what
to do. The CLI prints it as one line on stderr; the service turns it into a 4xx answer.
"""


class SoundgenError(Exception):
    """Base class of every error soundgen reports to a user."""


class ConfigError(SoundgenError):
    """A config file or override is malformed or names an unknown field."""


class AudioReadError(SoundgenError):
    """An audio file cannot be decoded (corrupt, empty, unsupported, or no decoder installed)."""


class AudioWriteError(SoundgenError):
    """Audio cannot be written in the asked format."""


class OutputWriteError(SoundgenError):
    """An output file cannot be written: its folder is missing, is a file or is read-only, or the disk is full."""


class InvalidAudioError(SoundgenError):
    """Decoded audio is unusable: NaN/inf samples, zero length, wrong shape."""


class CorruptFileError(SoundgenError):
    """A soundgen file (compressed audio, model, manifest) is truncated, forged or corrupted."""


class ModelNotFoundError(SoundgenError):
    """No model at the given place, or no bundled model installed."""


class InvalidRequestError(SoundgenError):
    """A generation or API request has an invalid value (empty prompt, negative duration, ...)."""


class MissingDependencyError(SoundgenError):
    """An optional package or program is needed for this feature; the message says how to install it."""


class CancelledError(SoundgenError):
    """Work was cancelled by its caller (e.g. a service job cancelled mid-generation)."""
