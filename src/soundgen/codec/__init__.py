"""Neural audio codec: causal SEANet encoder/decoder with a residual vector quantizer (EnCodec family).

``build_codec(CodecConfig())`` gives a model; ``soundgen.codec.io.load_codec(dir)`` loads a released one.
The model classes are imported lazily so that importing the configs (e.g. for ``soundgen --help``) does not
import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from soundgen.codec.config import CodecConfig, CodecRunConfig, CodecTrainConfig

if TYPE_CHECKING:
    from soundgen.codec.model import Codec, build_codec

__all__ = ["Codec", "CodecConfig", "CodecRunConfig", "CodecTrainConfig", "build_codec"]


def __getattr__(name: str) -> Any:
    if name in ("Codec", "build_codec"):
        from soundgen.codec import model

        return getattr(model, name)
    raise AttributeError(f"module 'soundgen.codec' has no attribute '{name}'")
