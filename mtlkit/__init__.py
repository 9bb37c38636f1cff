"""mtlkit: the reference code behind the multi-task learning workbook.

Survey map (Crawshaw 2020, arXiv 2009.09796): architectures (§2) live in
:mod:`mtlkit.models`, optimisation methods (§3) in :mod:`mtlkit.balancers`,
task relationship learning (§4) in :mod:`mtlkit.relations`, benchmarks (§5) in
:mod:`mtlkit.data` and :mod:`mtlkit.metrics`. Widgets live in
:mod:`mtlkit.widgets`, which nothing else imports.
"""
from .balancers import BALANCERS, make_balancer
from .config import default_device, is_quick, seed_everything, steps
from .data import MultiTaskDataset
from .grads import NonFiniteError
from .metrics import delta_m, per_task_delta
from .models import MODELS, HardSharing, MTLOutput, MultiTaskModel
from .tasks import Task, TaskSet, classification, regression
from .train import Callback, Trainer, fit_single_task_baselines

__version__ = "0.1.0"

__all__ = ["BALANCERS", "MODELS", "Callback", "HardSharing", "MTLOutput", "MultiTaskDataset", "MultiTaskModel",
           "NonFiniteError", "Task", "TaskSet", "Trainer", "classification", "default_device", "delta_m",
           "fit_single_task_baselines", "is_quick", "make_balancer", "per_task_delta", "regression",
           "seed_everything", "steps"]
