"""Host behaviours. A host serving verified inference is an executor of ``infer`` jobs staked in
the ``host`` role, so every cheating executor applies to hosts too, ``wrong_answer``
(:mod:`deai.protocol.jobs.cheaters.wrong_answer`, a plausible wrong answer) included.
"""

from __future__ import annotations

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.protocol.jobs.cheaters import cheater_names, make_executor
from deai.protocol.jobs.cheaters.wrong_answer import WrongAnswer
from deai.protocol.jobs.executor import Executor

__all__ = ["HOST_BEHAVIOURS", "WrongAnswer", "host_behaviours", "make_host"]


def host_behaviours() -> list[str]:
    """``honest`` and every registered cheating executor."""
    return ["honest", *cheater_names()]


HOST_BEHAVIOURS = host_behaviours


def make_host(behaviour: str, account: Account, store: BlobStore, **kwargs) -> Executor:
    return make_executor(behaviour, account, store, **kwargs)
