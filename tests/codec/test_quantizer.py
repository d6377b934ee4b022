"""Residual vector quantizer: code ranges, quantizer dropout, EMA updates, dead-code expiry, k-means init."""

from __future__ import annotations

import dataclasses

import torch

from soundgen.codec import CodecConfig
from soundgen.codec.quantizer import ResidualVectorQuantizer, VectorQuantizer


def _cfg(**changes: object) -> CodecConfig:
    return dataclasses.replace(CodecConfig.tiny(), **changes)


def test_codes_in_range_and_residuals_shrink() -> None:
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(_cfg(quantizer_dropout=0.0))
    x = torch.randn(4, 8, 50)
    rvq.train()
    for _ in range(5):
        rvq(x)
    rvq.eval()
    codes = rvq.encode(x, 4)
    assert codes.shape == (4, 4, 50) and codes.dtype == torch.int64
    assert int(codes.min()) >= 0 and int(codes.max()) < 32
    errors = [float((x - rvq.decode(codes[:, :k])).pow(2).mean()) for k in range(1, 5)]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False)), errors


def test_quantizer_dropout_uses_only_first_k_codebooks() -> None:
    torch.manual_seed(1)
    # decay 1 freezes the codebooks after the k-means initialisation, so training-time codes can be re-decoded
    rvq = ResidualVectorQuantizer(_cfg(quantizer_dropout=1.0, ema_decay=1.0, dead_code_threshold=0.0)).train()
    x = torch.randn(16, 8, 10)
    res = rvq(x)
    assert res.n_quantizers.min() >= 1 and res.n_quantizers.max() <= 4
    assert len(set(res.n_quantizers.tolist())) > 1  # several bitrates in one batch
    rvq.eval()
    for b in range(16):
        k = int(res.n_quantizers[b])
        expected = rvq.decode(res.codes[b : b + 1, :k])
        torch.testing.assert_close(res.quantized[b : b + 1], expected, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(rvq.decode(res.codes[b : b + 1, : k + 1]), expected) or k == 4


def test_quantizer_dropout_can_draw_only_the_served_bitrates() -> None:
    torch.manual_seed(3)
    cfg = _cfg(quantizer_dropout=1.0, dropout_bitrates=True)  # tiny: 2.5 kbps a codebook, bitrates 5 and 10
    assert [cfg.codebooks_for_bitrate(b) for b in cfg.bitrates] == [2, 4]
    rvq = ResidualVectorQuantizer(cfg).train()
    drawn = rvq(torch.randn(64, 8, 10)).n_quantizers.tolist()
    assert set(drawn) == {2, 4}  # never 1 or 3, and both served bitrates in one batch
    plain = ResidualVectorQuantizer(_cfg(quantizer_dropout=1.0)).train()
    assert set(plain(torch.randn(64, 8, 10)).n_quantizers.tolist()) == {1, 2, 3, 4}


def test_ema_moves_codewords_towards_their_inputs() -> None:
    torch.manual_seed(2)
    vq = VectorQuantizer(_cfg(ema_decay=0.5, dead_code_threshold=0.0)).train()
    vq(torch.randn(2, 8, 40))  # k-means initialisation
    x = torch.randn(2, 8, 40) + 3.0
    flat = x.transpose(1, 2).reshape(-1, 8)
    codes = vq.encode(x).reshape(-1)
    before = vq.codebook.clone()
    vq(x)
    for code in codes.unique():
        target = flat[codes == code].mean(0)
        assert torch.linalg.norm(vq.codebook[code] - target) < torch.linalg.norm(before[code] - target)


def test_dead_codes_are_replaced_by_encoder_outputs() -> None:
    torch.manual_seed(3)
    vq = VectorQuantizer(_cfg(dead_code_threshold=0.5, ema_decay=0.9)).train()
    x = torch.randn(2, 8, 40)
    vq(x)
    far = 100.0 + torch.arange(5.0)[:, None].expand(5, 8)
    with torch.no_grad():
        vq.codebook[:5] = far  # never chosen: these codes die
        vq.cluster_size[:5] = 0.0
    expired = 0
    for _ in range(3):
        expired += vq(x)[3].expired_codes  # type: ignore[union-attr]
    assert expired >= 5
    flat = x.transpose(1, 2).reshape(-1, 8)
    for code in range(5):
        assert vq.codebook[code].abs().max() < 50  # moved into the data
        assert torch.cdist(vq.codebook[code][None], flat).min() < 5.0


def test_kmeans_initialisation_on_first_batch() -> None:
    torch.manual_seed(4)
    vq = VectorQuantizer(_cfg(codebook_size=4, kmeans_iters=10)).train()
    centers = torch.tensor([[5.0] * 8, [-5.0] * 8, [5.0] * 4 + [-5.0] * 4, [-5.0] * 4 + [5.0] * 4])
    points = centers.repeat(25, 1) + 0.01 * torch.randn(100, 8)
    assert not bool(vq.initialized)
    vq(points.T[None])
    assert bool(vq.initialized)
    dist = torch.cdist(centers, vq.codebook).min(dim=1).values
    assert float(dist.max()) < 0.5


def test_normalised_low_dimensional_lookup() -> None:
    torch.manual_seed(5)
    rvq = ResidualVectorQuantizer(_cfg(codebook_dim=3, quantizer_dropout=0.0)).train()
    x = torch.randn(2, 8, 20, requires_grad=True)
    res = rvq(x)
    (res.quantized.sum() + res.commit_loss).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # straight-through gradient
    assert rvq.layers[0].project_in.weight.grad is not None  # type: ignore[union-attr]
    assert res.metrics["perplexity/0"] >= 1.0
