"""The ablation of notebook 04: PAD-Net with its multi-modal distillation switched off.

:class:`PADNetWithoutDistillation` is :class:`~mtlkit.models.PADNet` with the second
stage removed: every task's final head reads its own features, F_k^o = F_k, instead of

    F_k^o = F_k + Σ_{t≠k} σ(W_g^k * F_k) ⊙ (W_{t→k} * F_t).

Everything else is the same network: trunk, task branches, intermediate predictions
with deep supervision (λ L_t(P_t^i)), final heads. The gates and message convolutions
are still built (so both models draw the same initial weights from one seed) but no
output depends on them and they receive no gradient. Trained from the same seed on the
same batches, the two models differ only in the messages, so their paired gap is what
distillation adds (PAD-Net: Xu, Ouyang, Wang, Sebe, CVPR 2018, arXiv 1805.04409).

Lesson code: it builds on the core (models); the core never imports it.
"""
from __future__ import annotations

from torch import Tensor

from ..models import PADNet


class PADNetWithoutDistillation(PADNet):
    """PAD-Net whose distillation passes no messages: F_k^o = F_k (module docstring)."""

    def distill(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        return dict(feats)


__all__ = ["PADNetWithoutDistillation"]
