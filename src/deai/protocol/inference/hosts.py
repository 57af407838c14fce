"""Host behaviours. A host serving verified inference is an executor of ``infer`` jobs staked in
the ``host`` role, so every cheating executor applies to hosts too, ``wrong_answer``
(:mod:`deai.protocol.jobs.cheaters.wrong_answer`, a plausible wrong answer) included; a host is
built with :func:`deai.protocol.jobs.cheaters.make_executor`.
"""

from __future__ import annotations

from deai.protocol.jobs.cheaters import cheater_names

__all__ = ["host_behaviours"]


def host_behaviours() -> list[str]:
    """``honest`` and every registered cheating executor."""
    return ["honest", *cheater_names()]
