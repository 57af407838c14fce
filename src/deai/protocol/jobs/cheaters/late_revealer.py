"""``late_revealer``: computes honestly and commits, but reveals after the reveal deadline.

The ledger refuses the late reveal, so the executor counts as silent and is slashed. With
``late_commit=True`` it commits after the commit deadline instead (refused as well).
"""

from __future__ import annotations

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.protocol.jobs.cheaters.base import CHEATERS
from deai.protocol.jobs.executor import CommitMsg, Executor, JobView, RevealMsg

__all__ = ["LateRevealer"]


@CHEATERS.register("late_revealer")
class LateRevealer(Executor):
    def __init__(self, account: Account, store: BlobStore, *, late_commit: bool = False, **kwargs) -> None:
        super().__init__(account, store, **kwargs)
        self.late_commit = late_commit

    def commit(self, view: JobView) -> CommitMsg | None:
        msg = super().commit(view)
        if msg is not None and self.late_commit:
            return CommitMsg(msg.commitment, view.commit_deadline + 1)
        return msg

    def reveal(self, view: JobView) -> RevealMsg | None:
        msg = super().reveal(view)
        return None if msg is None else RevealMsg(msg.digest, msg.salt, view.reveal_deadline + 1)
