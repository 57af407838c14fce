"""Cheating executors for evaluation, one per file, by name:

- ``fake_result``: computes, then uploads a biased output;
- ``lazy``: skips the work, returns the input or noise;
- ``copycat``: copies another executor's commitment and reveal;
- ``colluding``: a group uploading one agreed wrong output;
- ``late_revealer``: reveals (or, optionally, commits) after the deadline.
"""

from deai.protocol.jobs.cheaters import colluding, copycat, fake_result, late_revealer, lazy  # noqa: F401
from deai.protocol.jobs.cheaters.base import CHEATERS, cheater_names, make_executor, register_cheater

__all__ = ["CHEATERS", "cheater_names", "make_executor", "register_cheater"]
