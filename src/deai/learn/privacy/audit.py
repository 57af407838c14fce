"""Membership-inference audit: how well can an attacker tell training members from non-members?

- :func:`loss_threshold_audit` (Yeom et al. 2018): score each sample by minus its loss under the
  target model; members of an overfit model have lower loss.
- :func:`shadow_model_audit` (Shokri et al. 2017): train shadow models with the target's recipe on
  data the attacker owns (half in, half out of each shadow's training set), learn an attack
  classifier from the shadows' outputs (sorted probabilities, loss, true-class probability), then
  apply it to the target's outputs.

Both report the ROC AUC (sklearn) over a balanced set of members and non-members: 0.5 means no
leakage detectable by this attack, 1.0 means every member is recognised. DP lowers it toward 0.5.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from torch import nn

from deai.learn.privacy.errors import PrivacyError

__all__ = ["AuditResult", "attack_features", "loss_threshold_audit", "shadow_model_audit"]


@dataclass(frozen=True)
class AuditResult:
    attack: str
    auc: float
    advantage: float  # max over thresholds of TPR - FPR (membership advantage)
    members: int
    non_members: int

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _balanced(members, non_members, seed):
    m = min(len(members[0]), len(non_members[0]))
    if m == 0:
        raise PrivacyError("need members and non-members to audit")
    g = torch.Generator().manual_seed(seed)
    pick = [torch.randperm(len(d[0]), generator=g)[:m] for d in (members, non_members)]
    return [(d[0][i], d[1][i]) for d, i in zip((members, non_members), pick, strict=True)]


@torch.no_grad()
def attack_features(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Per-sample attack features: sorted class probabilities, loss, probability of the true class."""
    model.eval()
    logits = model(x)
    probs = F.softmax(logits, dim=1)
    loss = F.cross_entropy(logits, y, reduction="none")
    top = probs.sort(dim=1, descending=True).values
    return torch.cat([top, loss[:, None], probs.gather(1, y[:, None])], dim=1).double().numpy()


def _result(attack, scores_in, scores_out) -> AuditResult:
    labels = np.r_[np.ones(len(scores_in)), np.zeros(len(scores_out))]
    scores = np.r_[scores_in, scores_out]
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    return AuditResult(
        attack,
        float(roc_auc_score(labels, scores)),
        float((tpr - fpr).max()),
        len(scores_in),
        len(scores_out),
    )


def loss_threshold_audit(
    model: nn.Module,
    members: tuple[torch.Tensor, torch.Tensor],
    non_members: tuple[torch.Tensor, torch.Tensor],
    seed: int = 0,
) -> AuditResult:
    """AUC of the loss-threshold attack on balanced member / non-member sets."""
    (xi, yi), (xo, yo) = _balanced(members, non_members, seed)
    loss_col = -2  # attack_features puts the loss second to last
    return _result(
        "loss_threshold",
        -attack_features(model, xi, yi)[:, loss_col],
        -attack_features(model, xo, yo)[:, loss_col],
    )


def shadow_model_audit(
    model: nn.Module,
    members: tuple[torch.Tensor, torch.Tensor],
    non_members: tuple[torch.Tensor, torch.Tensor],
    shadow_data: tuple[torch.Tensor, torch.Tensor],
    train_fn: Callable[[torch.Tensor, torch.Tensor, int], nn.Module],
    shadows: int = 4,
    seed: int = 0,
) -> AuditResult:
    """AUC of a shadow-model attack; ``train_fn(x, y, seed)`` must follow the target's recipe."""
    xs, ys = shadow_data
    if len(xs) < 4:
        raise PrivacyError("shadow data too small")
    feats, labels = [], []
    g = torch.Generator().manual_seed(seed)
    for k in range(shadows):
        perm = torch.randperm(len(xs), generator=g)
        inn, out = perm[: len(xs) // 2], perm[len(xs) // 2 :]
        shadow = train_fn(xs[inn], ys[inn], seed + 1 + k)
        for idx, label in ((inn, 1), (out, 0)):
            feats.append(attack_features(shadow, xs[idx], ys[idx]))
            labels.append(np.full(len(idx), label))
    attack = LogisticRegression(max_iter=2000, C=1.0)
    x_att = np.concatenate(feats)
    mu, sd = x_att.mean(0), x_att.std(0) + 1e-9
    attack.fit((x_att - mu) / sd, np.concatenate(labels))
    (xi, yi), (xo, yo) = _balanced(members, non_members, seed)
    score = lambda x, y: attack.predict_proba((attack_features(model, x, y) - mu) / sd)[:, 1]  # noqa: E731
    return _result("shadow_model", score(xi, yi), score(xo, yo))
