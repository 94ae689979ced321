"""Criteria with one call signature, `loss, parts = criterion(samples, outputs, targets)`, so the
training loop has no distillation branch (as in DeiT): plain supervision and distillation look alike;
`parts` are the named terms the loop logs."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

from .errors import UserError


def build_base_criterion(config, mixup_active):
    """Soft-target CE under mixup (targets are already smoothed), else label smoothing / plain CE."""
    if mixup_active:
        return SoftTargetCrossEntropy()
    if config.AUG.LABEL_SMOOTH > 0:
        return LabelSmoothingCrossEntropy(smoothing=config.AUG.LABEL_SMOOTH)
    return nn.CrossEntropyLoss()


def kd_kl_div(student_logits, teacher_logits, temperature):
    """T^2 * KL(softmax(t/T) || softmax(s/T)), summed over classes and averaged over the batch.

    This is the forward KL of Hinton et al. with batch-mean reduction (as timm's distillation task;
    DeiT's soft variant divides by B*C instead). Computed in float32 for stability under autocast.
    """
    log_p_s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    return F.kl_div(log_p_s, log_p_t, reduction='batchmean', log_target=True) * temperature ** 2


class SupervisedLoss(nn.Module):
    """The base criterion in the engine's signature: returns (loss, {}) (no parts to log)."""

    def __init__(self, base_criterion):
        super().__init__()
        self.base_criterion = base_criterion

    def forward(self, samples, outputs, targets):
        return self.base_criterion(outputs, targets), {}


class DistillationLoss(nn.Module):
    """alpha * T^2 * KL_batchmean(teacher || student) + (1 - alpha) * base(student, targets).

    The frozen teacher sees exactly the (mixed) clip that the student saw, under no_grad and under
    whatever autocast the caller runs. Returns (loss, {'loss_kd', 'loss_ce'}: the detached terms).
    """

    def __init__(self, base_criterion, teacher, alpha, temperature):
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise UserError(f'KD.ALPHA must be in [0, 1], got {alpha}')
        if temperature <= 0:
            raise UserError(f'KD.TEMPERATURE must be positive, got {temperature}')
        self.base_criterion = base_criterion
        self.teacher = teacher
        self.alpha = alpha
        self.temperature = temperature

    def train(self, mode=True):
        """The teacher stays in eval mode whatever mode the criterion is put in."""
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, samples, outputs, targets):
        base = self.base_criterion(outputs, targets)
        with torch.no_grad():
            teacher_logits = self.teacher(samples)
        kd = kd_kl_div(outputs, teacher_logits, self.temperature)
        loss = self.alpha * kd + (1.0 - self.alpha) * base
        return loss, {'loss_kd': kd.detach(), 'loss_ce': base.detach()}


class CachedDistillationLoss(DistillationLoss):
    """DistillationLoss whose teacher is a recording of its logits (utils.teacher_cache.CachedTeacher).

    The training loop calls `set_epoch(epoch)` before each epoch (as on the sampler); each call of
    the criterion then takes the next step's logits, so the loop needs no distillation branch. The
    input probe's difference is a logged part (`probe_diff`, 0 when the inputs replay) that `check`
    verifies once the loop has read it.
    """

    def set_epoch(self, epoch):
        self.teacher.set_epoch(epoch)

    def forward(self, samples, outputs, targets):
        loss, parts = super().forward(samples, outputs, targets)
        return loss, dict(parts, probe_diff=self.teacher.probe_diff)

    def check(self, values):
        """Called by the training loop with the step's parts read on the host (after backward is
        queued, before the optimiser step): stops a run whose inputs did not replay."""
        self.teacher.check_probe(values['probe_diff'])
