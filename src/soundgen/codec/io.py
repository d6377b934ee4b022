"""Released codec models on disk: a directory with ``config.json`` and ``model.safetensors``."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from soundgen.codec.config import CodecConfig
from soundgen.codec.model import Codec, build_codec
from soundgen.config import config_from_dict, config_to_dict
from soundgen.errors import ConfigError, CorruptFileError, ModelNotFoundError
from soundgen.model_files import default_model_dir
from soundgen.utils import atomic_path, atomic_write

log = logging.getLogger(__name__)

FORMAT = "soundgen-codec"
FORMAT_VERSION = 1


def weights_hash(codec: Codec) -> str:
    """Hex SHA-256 over the codec's tensors (names, shapes and float32 values), independent of file layout.

    Stored in every ``.sgc`` header so that codes are only ever decoded by the weights that made them.
    """
    h = hashlib.sha256()
    _hash_tensors(h, codec.state_dict().items())
    return h.hexdigest()


def _hash_tensors(h: Any, named: Any) -> None:
    for name, tensor in sorted(named):
        t = tensor.detach().cpu()
        t = t.float() if t.is_floating_point() else t
        h.update(name.encode())
        h.update(str(list(t.shape)).encode())
        h.update(t.contiguous().numpy().tobytes())


# what the codes of an audio file depend on besides the encoder's and quantizer's tensors
_CODE_SETTINGS = ("sample_rate", "channels", "strides", "n_codebooks", "codebook_size", "silence_gate")


def codes_hash(codec: Codec) -> str:
    """Hex SHA-256 over what turns audio into codes: the encoder's and quantizer's tensors and the settings that shape
    them, but not the decoder.

    Two codecs with equal codes hashes write the same codes for any audio (a decoder trained on a released codec's
    frozen codes, say), so a token cache or entropy tables fitted for one serve the other.
    """
    h = hashlib.sha256()
    settings = {name: getattr(codec.config, name) for name in _CODE_SETTINGS}
    h.update(json.dumps(settings, sort_keys=True).encode())
    _hash_tensors(h, ((k, v) for k, v in codec.state_dict().items() if k.split(".")[0] in ("encoder", "quantizer")))
    return h.hexdigest()


def save_codec(
    codec: Codec,
    model_dir: str | Path,
    *,
    fp16: bool = False,
    model_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``model_dir`` (atomically, file by file).

    Args:
        codec: the model.
        model_dir: target directory (created).
        fp16: store floating-point weights as float16 (half the size; loaded back as float32).
        model_id: a name recorded in the config and in every file the model encodes.
        extra: more JSON-serialisable facts for ``config.json`` (e.g. training steps).
    """
    from safetensors.torch import save_file

    out = Path(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, t in codec.state_dict().items():
        t = t.detach().cpu().contiguous()
        tensors[name] = t.half() if fp16 and t.is_floating_point() else t
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(tensors, str(tmp))
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model_id": model_id or out.resolve().name,
        "dtype": "float16" if fp16 else "float32",
        "model": config_to_dict(codec.config),
        **(extra or {}),
    }
    with atomic_write(out / "config.json", "w") as f:
        json.dump(meta, f, indent=2)
    return out


def resolve_model_dir(model_dir: str | Path | None) -> Path:
    """The given directory, else the default model's ``codec/`` (the one ``soundgen generate`` uses:
    ``$SOUNDGEN_MODEL`` or the bundled model, :func:`~soundgen.model_files.default_model_dir`).

    Raises:
        ModelNotFoundError: no codec there.
    """
    hint = "pass --model DIR (a directory written by 'soundgen codec export')"
    path = Path(model_dir) if model_dir is not None else default_model_dir(("codec",), hint) / "codec"
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise ModelNotFoundError(f"no codec model at {path} (needs config.json and model.safetensors); {hint}")
    return path


def codec_dir_in(path: str | Path) -> Path:
    """A codec directory as given, or the ``codec/`` inside a model directory.

    Raises:
        ModelNotFoundError: neither holds a codec's ``config.json``.
    """
    path = Path(path)
    found = path / "codec" if (path / "codec" / "config.json").is_file() else path
    if not (found / "config.json").is_file():
        raise ModelNotFoundError(
            f"no codec at {path}: give a directory written by 'soundgen codec export' or a model directory"
        )
    return found


def _read_meta(path: Path) -> dict[str, Any]:
    """``config.json`` of the codec directory ``path``, its format checked."""
    try:
        meta = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CorruptFileError(f"cannot read codec config {path / 'config.json'}: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CorruptFileError(f"{path / 'config.json'} is not a soundgen codec config")
    if meta.get("version") != FORMAT_VERSION:
        raise CorruptFileError(f"codec format version {meta.get('version')} is not supported (expected 1)")
    return meta


def _config_of(meta: dict[str, Any], path: Path) -> CodecConfig:
    try:
        return config_from_dict(CodecConfig, meta["model"], "model")
    except (KeyError, ConfigError) as e:
        raise CorruptFileError(f"cannot read codec config {path / 'config.json'}: {e}") from e


def read_codec_config(codec_dir: str | Path) -> CodecConfig:
    """The :class:`CodecConfig` recorded in a codec directory's ``config.json`` (the weights are not read).

    Raises:
        CorruptFileError: no readable soundgen codec config there.
    """
    path = Path(codec_dir)
    return _config_of(_read_meta(path), path)


def load_codec(model_dir: str | Path | None = None) -> Codec:
    """Load a codec in eval mode; ``None`` loads the bundled default.

    The returned codec has ``model_id`` and ``model_hash`` attributes (see :func:`weights_hash`).

    Raises:
        ModelNotFoundError: no model there.
        CorruptFileError: unreadable config or weights that do not fit the config.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = resolve_model_dir(model_dir)
    meta = _read_meta(path)
    codec = build_codec(_config_of(meta, path))
    try:
        state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(path / "model.safetensors").items()}
        codec.load_state_dict(state, strict=True)
    except (OSError, SafetensorError, RuntimeError) as e:
        raise CorruptFileError(f"codec weights {path / 'model.safetensors'} do not fit its config: {e}") from e
    codec.eval()
    codec.model_id = str(meta.get("model_id") or path.name)
    codec.model_hash = weights_hash(codec)
    return codec
