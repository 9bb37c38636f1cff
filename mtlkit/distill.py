"""Knowledge distillation for multi-task learning: single-task teachers teach one multi-task student (survey §3.5).

First train one network per task (the teachers), then freeze them and train the
multi-task student on a mix of the gold labels and the teachers' outputs. For
task t, with teacher weight w ∈ [0, 1]:

    L_t = (1 − w) · ℓ_t(ŷ_t, y_t) + w · D_t + β · F_t

* classification, soft targets (Hinton et al. 2015):
      D_t = τ² · KL( softmax(z_t^teacher / τ) ‖ softmax(z_t^student / τ) )
  (τ = 1 and any w is the loss ℓ(λ y + (1 − λ) ŷ^teacher, ŷ) of Clark et al., λ = 1 − w);
* regression, output matching:  D_t = || ŷ_t^student − ŷ_t^teacher ||²  (mean squared error);
* feature matching (Li & Bilen 2020): a small task-specific adaptor A_t (one linear
  map) takes the student's shared features z to the teacher's,
      F_t = mean_b || A_t(z_b) / ||A_t(z_b)|| − z_b^t / ||z_b^t|| ||²
  (features compared after L2 normalisation, so no task's scale dominates).

Teacher annealing (Clark et al. 2019, "BAM!"): w falls linearly from 1 (pure
distillation) to 0 (pure supervision) over training, so the student can end up
better than its teachers (:class:`TeacherAnnealing`).

:class:`KnowledgeDistillation` wraps the student as an ordinary
:class:`MultiTaskModel`: its ``auxiliary_losses`` add w (D_t − ℓ_t) + β F_t to each
task's loss, so the usual :class:`mtlkit.Trainer`, any balancer and the live panel
train it unchanged, and the teachers stay frozen.

G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network",
NIPS workshop 2014, arXiv 1503.02531. K. Clark, M.-T. Luong, U. Khandelwal,
C. D. Manning, Q. V. Le, "BAM! Born-Again Multi-Task Networks for Natural Language
Understanding", ACL 2019, arXiv 1907.04829. W.-H. Li, H. Bilen, "Knowledge
Distillation for Multi-task Learning", ECCV workshops 2020, arXiv 2007.06889.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import seed_everything
from .data.base import MultiTaskDataset
from .models.base import MTLOutput, MultiTaskModel, params_of
from .tasks import TaskSet
from .train import Callback, StepResult, Trainer


def soft_target_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """τ² KL(softmax(teacher/τ) ‖ softmax(student/τ)), classes along dim 1, mean over all other positions.

    Shapes (B, C) or (B, C, ...) for both. Zero exactly when the softened
    distributions agree; the τ² keeps gradient sizes comparable across τ.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape")
    if not temperature > 0:
        raise ValueError(f"temperature τ must be positive, got {temperature}")
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=1)
    return temperature ** 2 * kl.mean()


def feature_matching_loss(adapted: Tensor, teacher: Tensor, eps: float = 1e-8) -> Tensor:
    """mean_b || a_b/||a_b|| − f_b/||f_b|| ||² for adapted student features a (B, ...) and teacher features f (B, ...)."""
    if adapted.shape != teacher.shape:
        raise ValueError(f"adapted student features {tuple(adapted.shape)} and teacher features "
                         f"{tuple(teacher.shape)} must have the same shape")
    a = F.normalize(adapted.flatten(1), dim=1, eps=eps)
    f = F.normalize(teacher.flatten(1), dim=1, eps=eps)
    return (a - f).pow(2).sum(dim=1).mean()


def teacher_output(teacher: MultiTaskModel, x: Tensor, task: str) -> MTLOutput:
    """The teacher's output for ``task`` on x (no gradient)."""
    with torch.no_grad():
        out = teacher(x)
    return MTLOutput({task: out.outputs[task]}, out.z)


class KnowledgeDistillation(MultiTaskModel):
    """A multi-task ``student`` trained against frozen single-task ``teachers`` (task name -> model).

    ``teacher_weight`` is w of the module docstring (settable between steps),
    ``temperature`` τ of the soft targets, ``feature_weight`` β of feature
    matching; β > 0 needs ``example`` (a batch of inputs) to size the adaptors.
    Tasks without a teacher train on their gold labels only. Forward returns the
    student's output, so evaluation and prediction see the student alone; the teachers
    run on the same batch when the Trainer asks for ``auxiliary_losses``.
    """

    def __init__(self, student: MultiTaskModel, teachers: Mapping[str, MultiTaskModel], teacher_weight: float = 0.5,
                 temperature: float = 1.0, feature_weight: float = 0.0, example: Tensor | None = None):
        super().__init__(student.tasks)
        self._check_teachers(student.tasks, teachers)
        if not temperature > 0:
            raise ValueError(f"temperature τ must be positive, got {temperature}")
        if feature_weight < 0:
            raise ValueError(f"feature_weight β must be >= 0, got {feature_weight}")
        self.student = student
        self.teachers = nn.ModuleDict(dict(teachers))
        for teacher in self.teachers.values():
            teacher.requires_grad_(False)
            teacher.eval()
        self.teacher_weight = teacher_weight
        self.temperature, self.feature_weight = float(temperature), float(feature_weight)
        self.adaptors = self._build_adaptors(example) if feature_weight > 0 else nn.ModuleDict()
        self._last: tuple[Tensor, MTLOutput] | None = None

    @staticmethod
    def _check_teachers(tasks: TaskSet, teachers: Mapping[str, MultiTaskModel]) -> None:
        for name, teacher in teachers.items():
            if name not in tasks:
                raise KeyError(f"teacher given for unknown task {name!r}; the student's tasks are {tasks.names}")
            if name not in teacher.tasks or teacher.tasks[name] != tasks[name]:
                raise ValueError(f"the teacher for task {name!r} must predict that same task "
                                 f"({tasks[name]}); its tasks are {teacher.tasks.names}")

    def _build_adaptors(self, example: Tensor | None) -> nn.ModuleDict:
        if example is None:
            raise ValueError("feature matching (feature_weight > 0) needs `example`, a batch of inputs, "
                             "to size the adaptors")
        with torch.no_grad():
            z = self.student(example).z
            if z is None:
                raise ValueError(f"{type(self.student).__name__} has no shared representation z to match features on")
            dims = {n: teacher_output(t, example, n).z for n, t in self.teachers.items()}
        for name, zt in dims.items():
            if zt is None:
                raise ValueError(f"the teacher for task {name!r} has no representation z to match features on")
        return nn.ModuleDict({n: nn.Linear(z[0].numel(), zt[0].numel()) for n, zt in dims.items()})

    @property
    def teacher_weight(self) -> float:
        return self._teacher_weight

    @teacher_weight.setter
    def teacher_weight(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"teacher_weight w must lie in [0, 1], got {value}")
        self._teacher_weight = float(value)

    def train(self, mode: bool = True) -> "KnowledgeDistillation":
        super().train(mode)
        for teacher in self.teachers.values():
            teacher.eval()
        return self

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        own = self.student.task_parameters(name)
        return own + (params_of(self.adaptors[name]) if name in self.adaptors else [])

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return self.student.last_shared_parameters()

    def regularizer(self) -> Tensor | None:
        return self.student.regularizer()

    def forward(self, x: Tensor) -> MTLOutput:
        out = self.student(x)
        self._last = (x, out)
        return out

    def distillation_loss(self, name: str, student: Tensor, teacher: Tensor) -> Tensor:
        """D_t: soft targets for classification, output matching for regression."""
        if self.tasks[name].kind == "classification":
            return soft_target_loss(student, teacher, self.temperature)
        return F.mse_loss(student, teacher)

    def auxiliary_losses(self, targets: Mapping[str, Tensor]) -> Tensor | None:
        """(T,) w (D_t − ℓ_t) + β F_t for the last forward pass's batch (0 for tasks without a teacher or target)."""
        if self._last is None:
            raise RuntimeError("auxiliary_losses needs a forward pass first")
        x, out = self._last
        teachers = {n: teacher_output(t, x, n) for n, t in self.teachers.items()}
        terms = []
        for name in self.tasks:
            term = out.outputs[name].new_zeros(())
            if name in teachers and name in targets:
                pred = out.outputs[name]
                gold = self.tasks[name].loss(pred, targets[name])
                term = term + self.teacher_weight * (self.distillation_loss(name, pred, teachers[name].outputs[name])
                                                     - gold)
                if self.feature_weight > 0:
                    adapted = self.adaptors[name](out.z.flatten(1))
                    term = term + self.feature_weight * feature_matching_loss(
                        adapted, teachers[name].z.flatten(1))
            terms.append(term)
        return torch.stack(terms)


class TeacherAnnealing(Callback):
    """BAM!'s teacher annealing: w = 1 − step / total_steps, from pure distillation to pure supervision."""

    def __init__(self, total_steps: int):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.total_steps = total_steps

    def on_step(self, trainer: Trainer, result: StepResult) -> None:
        if not isinstance(trainer.model, KnowledgeDistillation):
            raise TypeError(f"TeacherAnnealing needs a KnowledgeDistillation model, got {type(trainer.model).__name__}")
        trainer.model.teacher_weight = max(0.0, 1.0 - result.step / self.total_steps)


def train_teachers(make_model: Callable[[TaskSet], MultiTaskModel], data: MultiTaskDataset, steps: int,
                   seed: int = 0, **trainer_kwargs) -> dict[str, MultiTaskModel]:
    """One single-task model per task of ``data``, each trained ``steps`` steps on that task alone.

    ``make_model(tasks)`` builds a model for a one-task TaskSet; ``trainer_kwargs``
    go to :class:`Trainer` (lr, batch_size, device, ...). Returns task name -> model.
    """
    teachers = {}
    for name in data.tasks:
        seed_everything(seed)
        one = data.select_tasks([name])
        trainer = Trainer(make_model(one.tasks), seed=seed, **trainer_kwargs)
        trainer.fit(one, steps=steps)
        teachers[name] = trainer.model.eval()
    return teachers


@torch.no_grad()
def agreement(student: MultiTaskModel, teachers: Mapping[str, MultiTaskModel], data: MultiTaskDataset,
              batch_size: int = 1024) -> dict[str, float]:
    """Per task with a teacher: classification, fraction of examples where student and teacher predict the
    same class; regression, mean squared difference of their outputs."""
    device = next(student.parameters()).device
    sums: dict[str, float] = {n: 0.0 for n in teachers}
    was_training = student.training
    student.eval()
    for x, _ in data.to(device).batches(batch_size, shuffle=False):
        out = student(x).outputs
        for name, teacher in teachers.items():
            ref = teacher_output(teacher.to(device), x, name).outputs[name]
            if student.tasks[name].kind == "classification":
                sums[name] += float((out[name].argmax(1) == ref.argmax(1)).float().sum())
            else:
                sums[name] += float((out[name] - ref).pow(2).flatten(1).mean(1).sum())
    student.train(was_training)
    return {n: s / len(data) for n, s in sums.items()}


__all__ = ["KnowledgeDistillation", "TeacherAnnealing", "agreement", "feature_matching_loss", "soft_target_loss",
           "teacher_output", "train_teachers"]
