"""``copycat``: never computes; copies another executor's commitment and later its reveal.

It waits while nothing is visible, copies the first commitment that appears on the ledger, then
copies the first reveal. Commit-reveal stops it twice: commitments bind the executor's address
(``H(job ‖ executor ‖ digest ‖ salt)``), so a copied commitment never opens for the copier; and
reveals open only after every commitment is in, so there is no output to copy at commit time. Its
reveal is refused, it counts as silent, and it is slashed.
"""

from __future__ import annotations

from deai.ledger.commitments import derived_salt
from deai.protocol.jobs.cheaters.base import CHEATERS
from deai.protocol.jobs.executor import CommitMsg, Executor, JobView, RevealMsg

__all__ = ["Copycat"]


@CHEATERS.register("copycat")
class Copycat(Executor):
    def commit(self, view: JobView) -> CommitMsg | None:
        others = [c for a, c in view.commitments.items() if a != self.address]
        if others:
            return CommitMsg(others[0], view.now)
        if view.now < view.commit_deadline - 1:
            return None  # wait for someone to commit
        return CommitMsg(derived_salt(self.account, "decoy", view.job_id), view.now)

    def reveal(self, view: JobView) -> RevealMsg | None:
        others = [r for a, r in view.reveals.items() if a != self.address]
        if not others:
            return None  # wait for a reveal to copy
        digest, salt = others[0]
        return RevealMsg(digest, salt, view.now)
