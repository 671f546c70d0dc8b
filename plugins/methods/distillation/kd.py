"""Knowledge distillation (Hinton et al. 2015): the uncompressed model teaches a smaller
student with its softened outputs (KL divergence at temperature T, scaled by T²) plus the
hard-label loss. The same student is also trained without the teacher (same epochs, seed
and data order), so the result shows what the teacher bought."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from harness.api import Method
from harness.toolkit import count_params, fresh_copy
from harness_plugins.methods.pruning.channels import shrink_channels


@dataclass(frozen=True)
class KDParams:
    student: str = ""  # a model of the suite, by name ...
    width: float = 0.0  # ... or the teacher's architecture keeping this share of its channels
    reinit: bool = True  # start from fresh weights (False: the student's, or the narrowed teacher's)
    temperature: float = 4.0
    alpha: float = 0.1  # weight of the hard-label loss; 1 - alpha goes to the soft targets
    epochs: int = 20
    lr: float = 5e-3
    batch_size: int = 64

    def __post_init__(self) -> None:
        if bool(self.student) == bool(self.width):
            raise ValueError("set exactly one of student (a model name of the suite) and width (> 0)")
        if not 0.0 <= self.width < 1.0:
            raise ValueError(f"width = {self.width} must be in (0, 1): the share of the teacher's channels kept")
        if self.temperature <= 0:
            raise ValueError(f"temperature = {self.temperature} must be > 0")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha = {self.alpha} must be between 0 and 1")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr = {self.lr} must be in (0, 1)")


def kd_loss(teacher: Any, temperature: float, alpha: float, hard_loss: Any) -> Any:
    """``loss(output, target, inputs)`` for :func:`harness.toolkit.fit`."""
    import torch
    import torch.nn.functional as F

    def loss(output: Any, target: Any, inputs: Any) -> Any:
        with torch.no_grad():  # transformers models return an output object with .logits
            taught = teacher(inputs)
            soft = F.log_softmax(getattr(taught, "logits", taught).float() / temperature, dim=-1)
        student = F.log_softmax(getattr(output, "logits", output).float() / temperature, dim=-1)
        kl = F.kl_div(student, soft, log_target=True, reduction="batchmean") * temperature ** 2
        return alpha * hard_loss(output, target) + (1 - alpha) * kl

    return loss


class KD(Method):
    name = "distill.kd"
    family = "distillation"
    needs = ("teacher", "training")
    description = "train a smaller student on the teacher's soft targets (KL·T²) plus the hard labels"
    Params = KDParams

    def student(self, params: KDParams, ctx: Any) -> tuple[Any, str]:
        """The student and how it was made."""
        if params.width:
            student = copy.deepcopy(ctx.teacher)
            _, scope = shrink_channels(student, ctx.task.example_input(1), 1 - params.width)
            made = f"the teacher's architecture with {params.width:g} of its channels (torch-pruning: {scope})"
        else:
            student, made = ctx.load_model(params.student).to(ctx.device), params.student
        return (fresh_copy(student, ctx.seed) if params.reinit else student), made

    def apply(self, model, params, ctx):
        import torch

        from harness.toolkit import fit

        teacher = ctx.teacher.eval()
        student, made = self.student(params, ctx)
        plain = copy.deepcopy(student)  # the same start, trained without the teacher
        train = {"epochs": params.epochs, "lr": params.lr, "seed": ctx.seed, "batch_size": params.batch_size}
        teacher_accuracy = ctx.evaluate(teacher).get("accuracy")
        start_accuracy = ctx.evaluate(student).get("accuracy")

        report = fit(student, ctx.task, loss=kd_loss(teacher, params.temperature, params.alpha, ctx.task.loss), **train)
        torch.manual_seed(ctx.seed)
        plain_report = fit(plain, ctx.task, **train)
        accuracy, plain_accuracy = ctx.evaluate(student).get("accuracy"), ctx.evaluate(plain).get("accuracy")
        teacher_params, student_params = count_params(teacher), count_params(student)
        return student, {
            "student": made, "student_reinit": params.reinit,
            "params_before": teacher_params, "params_after": student_params,
            "params_ratio": student_params / teacher_params,
            "teacher_accuracy": teacher_accuracy, "student_start_accuracy": start_accuracy,
            "student_accuracy": accuracy, "accuracy_vs_teacher": accuracy / teacher_accuracy if teacher_accuracy else None,
            "no_teacher_accuracy": plain_accuracy, "beats_no_teacher": accuracy > plain_accuracy,
            "temperature": params.temperature, "alpha": params.alpha,
            "training": report.to_dict(), "no_teacher_training": plain_report.to_dict(),
            "training_samples": report.samples, "calibration_samples": 0,
            "kernels": "real (a smaller dense model)", "library": f"torch {torch.__version__}",
        }

