"""Cheating executors for evaluation, one per file, each declared with ``@CHEATERS.register``:

- ``fake_result``: computes, then uploads a biased output;
- ``lazy``: skips the work, returns the input or noise;
- ``copycat``: copies another executor's commitment and reveal;
- ``colluding``: a group uploading one agreed wrong output;
- ``late_revealer``: reveals (or, optionally, commits) after the deadline;
- ``wrong_answer``: a plausible wrong answer (inference hosts' cheat);
- cheating trainers on refereed ``train_steps`` jobs (:mod:`.training`): ``skip_steps``,
  ``other_data``, ``fewer_epochs``, ``stale_checkpoint``, ``forged_state``, ``lazy_copy``.

Importing this package imports every member module, so every behaviour is known to
:func:`make_executor` and :func:`cheater_names` (scenario checks, hosts, benchmarks).
"""

# The member modules, each declaring its behaviour on CHEATERS:
from deai.protocol.jobs.cheaters import (  # noqa: F401
    colluding,
    copycat,
    fake_result,
    fewer_epochs,
    forged_state,
    late_revealer,
    lazy,
    lazy_copy,
    other_data,
    skip_steps,
    stale_checkpoint,
    wrong_answer,
)
from deai.protocol.jobs.cheaters.base import CHEATERS, cheater_names, make_executor

__all__ = ["CHEATERS", "cheater_names", "make_executor"]
