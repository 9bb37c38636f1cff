"""Uncertainty weighting: learn one homoscedastic noise level per task.

Each task gets a learnable log-variance s_i = log σ_i² and the objective

    regression form:      L = Σ_i ½ e^{-s_i} L_i + ½ s_i
    classification form:  L = Σ_i   e^{-s_i} L_i + ½ s_i

For a fixed L_i the regression form is minimised at e^{s_i} = L_i, i.e. σ_i² = L_i:
noisy (high-loss) tasks are down-weighted. The s_i are ordinary parameters that
the Trainer's optimizer updates together with the model.

Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses
for Scene Geometry and Semantics", CVPR 2018, arXiv 1705.07115.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..models.base import MTLOutput, MultiTaskModel
from .base import WeightingBalancer

FORMS = ("regression", "classification", "auto")


class UncertaintyWeighting(WeightingBalancer):
    """Learned log-variances s (T,); ``form`` picks the ½ (regression) or 1 (classification) factor.

    ``form="auto"`` uses each task's kind (regression or classification) once the
    model is known; before that (e.g. calling :meth:`objective` directly) it is
    the regression form.
    """

    name = "uncertainty"

    def __init__(self, form: str = "regression", init_log_var: float = 0.0):
        super().__init__()
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        self.form = form
        self.init_log_var = float(init_log_var)
        self.log_vars: nn.Parameter | None = None
        self._factors: Tensor | None = None

    def setup(self, num_tasks: int, task_names: Sequence[str] | None = None) -> None:
        super().setup(num_tasks, task_names)
        self.log_vars = nn.Parameter(torch.full((num_tasks,), self.init_log_var, device=self.device))
        factor = 1.0 if self.form == "classification" else 0.5
        self._factors = torch.full((num_tasks,), factor, device=self.device)

    def backward(self, losses: Tensor, model: MultiTaskModel, output: MTLOutput):
        if self.form == "auto":
            self._factors = torch.tensor([1.0 if model.tasks[n].kind == "classification" else 0.5
                                          for n in model.tasks], device=losses.device)
        return super().backward(losses, model, output)

    def objective(self, losses: Tensor) -> tuple[Tensor, Tensor]:
        self.check_finite(losses, "loss")
        if self.log_vars is None:
            self.setup(losses.shape[0])
        w = self._factors.to(losses.device) * torch.exp(-self.log_vars)
        return (w * losses + 0.5 * self.log_vars).sum(), w.detach()
