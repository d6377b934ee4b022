"""EnCodec's gradient loss balancer.

Instead of summing weighted losses, each loss's gradient with respect to the model output is normalised by
a running average of its norm and scaled by its share of the weights, so a weight states which fraction of
the gradient a loss contributes, whatever the loss's natural scale.
"""

from __future__ import annotations

import torch


class Balancer:
    """Balance losses that depend on one tensor (the decoded audio).

    Args:
        weights: loss name -> weight; the weights are normalised to sum to 1.
        ema_decay: decay of the running average of each gradient's norm.
        total_norm: norm of the combined gradient when every loss has its average norm.
        epsilon: guards the division.
    """

    def __init__(
        self, weights: dict[str, float], ema_decay: float = 0.999, total_norm: float = 1.0, epsilon: float = 1e-12
    ) -> None:
        self.weights = weights
        self.decay = ema_decay
        self.total_norm = total_norm
        self.epsilon = epsilon
        self._avg: dict[str, float] = {}
        self._count: dict[str, float] = {}

    def _update_average(self, name: str, value: float) -> float:
        # Bias-corrected EMA (the average of the first values is not pulled towards 0).
        self._avg[name] = self.decay * self._avg.get(name, 0.0) + value
        self._count[name] = self.decay * self._count.get(name, 0.0) + 1.0
        return self._avg[name] / self._count[name]

    def gradient(self, losses: dict[str, torch.Tensor], output: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Combined gradient of ``losses`` w.r.t. ``output`` (same shape) and each loss's raw gradient norm.

        Only losses named in ``weights`` count; the others are ignored. Under DDP the norms are averaged over
        ranks, so every rank scales identically.
        """
        names = [n for n in losses if n in self.weights]
        total_weight = sum(self.weights[n] for n in names)
        combined = torch.zeros_like(output)
        norms: dict[str, float] = {}
        for name in names:
            (grad,) = torch.autograd.grad(losses[name], [output], retain_graph=True)
            norm = grad.norm(dim=tuple(range(1, grad.dim()))).mean()
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.all_reduce(norm)
                norm = norm / torch.distributed.get_world_size()
            norms[name] = float(norm)
            avg = self._update_average(name, norms[name])
            scale = self.weights[name] / total_weight * self.total_norm / (self.epsilon + avg)
            combined = combined + scale * grad
        return combined, norms

    def state_dict(self) -> dict[str, dict[str, float]]:
        return {"avg": dict(self._avg), "count": dict(self._count)}

    def load_state_dict(self, state: dict[str, dict[str, float]]) -> None:
        self._avg = dict(state.get("avg", {}))
        self._count = dict(state.get("count", {}))
