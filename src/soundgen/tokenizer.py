"""The narrow interface through which the LM and the pipeline know an audio codec.

Anything with these attributes and methods can tokenize audio for the LM: the neural codec of
:mod:`soundgen.codec`, or another codec a user brings.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class AudioTokenizer(Protocol):
    """Turns audio into discrete codes and back.

    Attributes:
        sample_rate: audio samples per second.
        channels: audio channels (1 for the default model).
        frame_rate: code frames per second.
        n_codebooks: codebooks K in use: :meth:`encode` gives K codes per frame (see :meth:`set_n_codebooks`).
        max_codebooks: the most codebooks the tokenizer has (``n_codebooks <= max_codebooks``).
        codebook_size: entries per codebook; codes lie in ``[0, codebook_size)``.
        model_hash: names the weights whose codes these are (a token cache made with other weights is refused);
            ``""`` when the weights have no name (not loaded from disk).
        device: where :meth:`encode` and :meth:`decode` take their tensors.
    """

    sample_rate: int
    channels: int
    frame_rate: float
    n_codebooks: int
    max_codebooks: int
    codebook_size: int
    model_hash: str

    @property
    def device(self) -> torch.device:
        """Where :meth:`encode` and :meth:`decode` take their tensors."""
        ...

    def set_n_codebooks(self, k: int) -> None:
        """Use the first ``k`` codebooks (``1 <= k <= max_codebooks``) from now on.

        Raises:
            ValueError: ``k`` out of range.
        """
        ...

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """Encode audio ``[B, C, T]`` (float, -1..1) to codes ``[B, K, F]`` (int64)."""
        ...

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Decode codes ``[B, K, F]`` to audio ``[B, C, T]``."""
        ...
