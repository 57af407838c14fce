"""Host behaviours. A host serving verified inference is an executor of ``infer`` jobs staked in
the ``host`` role, so every cheating executor applies to hosts too; ``wrong_answer`` adds the
cheat that matters most to a user: a plausible answer (right shape, finite, confident) that is
wrong — the logits of each row are rotated by one class, so the predicted label always changes.
"""

from __future__ import annotations

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.protocol.jobs.cheaters import cheater_names, make_executor, register_cheater
from deai.protocol.jobs.executor import Executor, JobView
from deai.protocol.jobs.kinds.base import Tensors

__all__ = ["HOST_BEHAVIOURS", "WrongAnswer", "host_behaviours", "make_host"]


@register_cheater("wrong_answer")
class WrongAnswer(Executor):
    def produce(self, view: JobView) -> Tensors:
        out = self.compute(view.spec)
        if view.spec.kind != "infer":
            return {k: v * 1.05 + 0.05 if v.is_floating_point() else v for k, v in out.items()}
        return {"logits": out["logits"].roll(shifts=1, dims=1).contiguous()}


def host_behaviours() -> list[str]:
    """``honest`` and every registered cheating executor."""
    return ["honest", *cheater_names()]


HOST_BEHAVIOURS = host_behaviours


def make_host(behaviour: str, account: Account, store: BlobStore, **kwargs) -> Executor:
    return make_executor(behaviour, account, store, **kwargs)
