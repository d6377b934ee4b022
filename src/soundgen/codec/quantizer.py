"""Residual vector quantizer with EMA codebooks, k-means initialisation, dead-code expiry and quantizer dropout.

Each layer quantizes the residual the layers before it left. Codebooks are not trained by gradients but by
exponential moving averages of the vectors assigned to each code (VQ-VAE-2 / SoundStream). All changes to
codebook state go through :meth:`VectorQuantizer.init_codebook` and :meth:`VectorQuantizer.update_codebook`.
When a process group is initialised (``torchrun``, see :mod:`soundgen.distributed`) they sum the
statistics over ranks before the update and take whatever is chosen at random (k-means initialisation,
replacements of dead codes) from rank 0, so every rank keeps identical codebooks under DDP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from soundgen import distributed
from soundgen.codec.config import CodecConfig


def kmeans(x: torch.Tensor, k: int, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain k-means. Args: x ``[N, D]``. Returns centroids ``[k, D]`` and cluster sizes ``[k]``."""
    n = x.shape[0]
    idx = torch.randperm(n, device=x.device)[:k] if n >= k else torch.randint(0, n, (k,), device=x.device)
    centroids = x[idx].clone()
    sizes = torch.zeros(k, device=x.device)
    for _ in range(max(1, iters)):
        assign = torch.cdist(x, centroids).argmin(dim=-1)
        sizes = torch.bincount(assign, minlength=k).to(x.dtype)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        used = sizes > 0
        centroids[used] = sums[used] / sizes[used, None]
    return centroids, sizes


@dataclass
class LayerStats:
    """What one quantizer layer did on a training batch."""

    perplexity: float
    used_codes: int
    expired_codes: int


class VectorQuantizer(nn.Module):
    """One EMA codebook. Vectors ``[B, D, T]`` to codes ``[B, T]`` and back.

    With ``codebook_dim`` set, vectors are projected to that dimension and l2-normalised before the lookup
    (DAC's factorised codes), and the chosen codeword is projected back.
    """

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.dim = cfg.latent_dim
        self.size = cfg.codebook_size
        self.decay = cfg.ema_decay
        self.dead_threshold = cfg.dead_code_threshold
        self.kmeans_iters = cfg.kmeans_iters
        self.normalize = cfg.codebook_dim is not None
        lookup_dim = cfg.codebook_dim or cfg.latent_dim
        self.project_in: nn.Module = nn.Linear(self.dim, lookup_dim) if self.normalize else nn.Identity()
        self.project_out: nn.Module = nn.Linear(lookup_dim, self.dim) if self.normalize else nn.Identity()
        self.register_buffer("codebook", torch.randn(self.size, lookup_dim) * 0.1)
        self.register_buffer("cluster_size", torch.zeros(self.size))
        self.register_buffer("embed_sum", self.codebook.clone())
        self.register_buffer("initialized", torch.tensor(False))
        self.codebook: torch.Tensor
        self.cluster_size: torch.Tensor
        self.embed_sum: torch.Tensor
        self.initialized: torch.Tensor

    def _lookup_space(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, D, T]`` to flat lookup vectors ``[B*T, d]``."""
        flat = self.project_in(x.transpose(1, 2).reshape(-1, self.dim))
        return F.normalize(flat, dim=-1) if self.normalize else flat

    def _table(self) -> torch.Tensor:
        return F.normalize(self.codebook, dim=-1) if self.normalize else self.codebook

    def _nearest(self, flat: torch.Tensor) -> torch.Tensor:
        table = self._table()
        dist = table.pow(2).sum(-1)[None, :] - 2 * flat @ table.t()
        return dist.argmin(dim=-1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``[B, D, T]``. Returns codes ``[B, T]`` (int64)."""
        return self._nearest(self._lookup_space(x).float()).view(x.shape[0], x.shape[2])

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Args: codes ``[B, T]``. Returns vectors ``[B, D, T]``."""
        return self.project_out(F.embedding(codes, self._table())).transpose(1, 2)

    @torch.no_grad()
    def init_codebook(self, flat: torch.Tensor) -> None:
        """k-means initialisation from the first training batch ``[N, d]`` (rank 0's batch under DDP)."""
        if distributed.is_main():
            centroids, sizes = kmeans(flat.float(), self.size, self.kmeans_iters)
        else:  # rank 0's result arrives below
            centroids, sizes = torch.empty_like(self.codebook), torch.empty_like(self.cluster_size)
        self.codebook.copy_(distributed.broadcast(centroids))
        # Empty clusters count as one vector so that codeword = embed_sum / cluster_size holds for every code.
        self.cluster_size.copy_(distributed.broadcast(sizes.clamp(min=1.0)))
        self.embed_sum.copy_(self.codebook * self.cluster_size[:, None])
        self.initialized.fill_(True)

    @torch.no_grad()
    def update_codebook(self, flat: torch.Tensor, codes: torch.Tensor) -> LayerStats:
        """The one place codebook state changes: EMA update of usage and sums, then dead-code expiry.

        Args:
            flat: lookup-space vectors ``[N, d]`` of this batch.
            codes: their codes ``[N]``.

        Under DDP the counts and sums are summed over ranks first, so every rank applies the same update.
        """
        flat = flat.float()
        counts = distributed.all_reduce_sum(torch.bincount(codes, minlength=self.size).float())
        sums = distributed.all_reduce_sum(torch.zeros_like(self.codebook).index_add_(0, codes, flat))
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + 1e-5) / (total + self.size * 1e-5) * total
        self.codebook.copy_(self.embed_sum / smoothed[:, None])
        expired = self._expire_dead_codes(flat)
        probs = counts / counts.sum().clamp(min=1)
        perplexity = torch.exp(-(probs * probs.clamp(min=1e-10).log()).sum()).item()
        return LayerStats(perplexity=perplexity, used_codes=int((counts > 0).sum()), expired_codes=expired)

    def _expire_dead_codes(self, flat: torch.Tensor) -> int:
        """Replace codes whose usage fell below ``dead_threshold`` x uniform usage by random batch vectors.

        Usage is the same on every rank (summed statistics), so all ranks agree on the dead codes; their
        replacements are rank 0's picks.
        """
        uniform = self.cluster_size.sum() / self.size
        dead = self.cluster_size < self.dead_threshold * uniform
        n_dead = int(dead.sum())
        if n_dead == 0 or flat.shape[0] == 0:
            return 0
        pick = torch.randint(0, flat.shape[0], (n_dead,), device=flat.device)
        new = distributed.broadcast(flat[pick].clone())
        self.codebook[dead] = new
        self.cluster_size[dead] = uniform
        self.embed_sum[dead] = new * uniform
        return n_dead

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, LayerStats | None]:
        """Quantize ``x [B, D, T]``; in training also initialise/update the codebook.

        Returns:
            quantized ``[B, D, T]`` (straight-through gradient to ``x``), codes ``[B, T]``, the commitment loss
            (scalar) and layer statistics (``None`` outside training).
        """
        b, _, t = x.shape
        flat = self._lookup_space(x)
        if self.training and not bool(self.initialized):
            self.init_codebook(flat.detach())
        codes = self._nearest(flat.detach().float())
        chosen = F.embedding(codes, self._table()).to(flat.dtype)
        commit = F.mse_loss(flat, chosen.detach())
        stats = self.update_codebook(flat.detach(), codes) if self.training else None
        straight = flat + (chosen - flat).detach()
        quantized = self.project_out(straight).view(b, t, self.dim).transpose(1, 2)
        return quantized, codes.view(b, t), commit, stats


@dataclass
class QuantizedResult:
    """Output of :class:`ResidualVectorQuantizer` on a batch.

    Attributes:
        quantized: sum of the chosen codewords ``[B, D, T]``.
        codes: ``[B, K, T]`` int64 (K = codebooks used).
        commit_loss: weighted commitment loss (scalar tensor).
        n_quantizers: codebooks each example used ``[B]`` (quantizer dropout).
        metrics: per-layer perplexity / used / expired codes (training only).
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    commit_loss: torch.Tensor
    n_quantizers: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


class ResidualVectorQuantizer(nn.Module):
    """K EMA codebooks in sequence; each quantizes what the previous ones left."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.layers: list[VectorQuantizer] = nn.ModuleList(  # type: ignore[assignment]
            VectorQuantizer(cfg) for _ in range(cfg.n_codebooks)
        )
        self.dropout = cfg.quantizer_dropout
        # the codebook counts quantizer dropout draws from (None: every count in 1..K)
        self.dropout_counts: list[int] | None = (
            sorted({cfg.codebooks_for_bitrate(kbps) for kbps in cfg.bitrates}) if cfg.dropout_bitrates else None
        )
        self.commitment_weight = cfg.commitment_weight
        self.straight_through = cfg.rvq_straight_through

    def forward(self, x: torch.Tensor, n_quantizers: int | None = None) -> QuantizedResult:
        """Quantize latents ``x [B, D, T]`` with up to ``n_quantizers`` codebooks.

        In training, with probability ``quantizer_dropout`` an example uses only the first ``n`` codebooks,
        ``n`` uniform in ``1..K`` (or over the codebook counts of the config's bitrates, with
        ``dropout_bitrates``); every layer still sees (and learns from) every example's residual.
        With ``rvq_straight_through: total`` the gradient of ``quantized`` reaches ``x`` exactly once
        (identity), however many codebooks an example uses; with ``per_layer`` once per active codebook.
        """
        k_max = len(self.layers) if n_quantizers is None else min(n_quantizers, len(self.layers))
        n_q = torch.full((x.shape[0],), k_max, device=x.device)
        if self.training and self.dropout > 0:
            drop = torch.rand(x.shape[0], device=x.device) < self.dropout
            if self.dropout_counts is None:
                drawn = torch.randint(1, k_max + 1, n_q.shape, device=x.device)
            else:
                counts = torch.tensor([min(c, k_max) for c in self.dropout_counts], device=x.device)
                drawn = counts[torch.randint(0, len(counts), n_q.shape, device=x.device)]
            n_q = torch.where(drop, drawn, n_q)
        residual = x
        quantized = torch.zeros_like(x)
        codes, losses, metrics = [], [], {}
        for i, layer in enumerate(self.layers[:k_max]):
            q, c, commit, stats = layer(residual)
            active = (n_q > i).to(x.dtype)[:, None, None]
            quantized = quantized + q * active
            residual = residual - q.detach()
            codes.append(c)
            losses.append(commit)
            if stats is not None:
                metrics[f"perplexity/{i}"] = stats.perplexity
                metrics[f"used_codes/{i}"] = float(stats.used_codes)
                metrics[f"expired_codes/{i}"] = float(stats.expired_codes)
        if self.straight_through == "total" and torch.is_grad_enabled() and x.requires_grad:
            quantized = x + (quantized - x).detach()
        commit_loss = torch.stack(losses).sum() * self.commitment_weight
        return QuantizedResult(quantized, torch.stack(codes, dim=1), commit_loss, n_q, metrics)

    def encode(self, x: torch.Tensor, n_quantizers: int) -> torch.Tensor:
        """Args: x ``[B, D, T]``. Returns codes ``[B, n_quantizers, T]`` (int64)."""
        residual = x
        codes = []
        for layer in self.layers[:n_quantizers]:
            c = layer.encode(residual)
            residual = residual - layer.decode(c)
            codes.append(c)
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Args: codes ``[B, K, T]`` with K <= n_codebooks. Returns the summed codewords ``[B, D, T]``."""
        if codes.shape[1] > len(self.layers):
            raise ValueError(f"{codes.shape[1]} codebooks given, the model has {len(self.layers)}")
        out = None
        for i in range(codes.shape[1]):
            q = self.layers[i].decode(codes[:, i])
            out = q if out is None else out + q
        assert out is not None, "at least one codebook is needed"
        return out
