"""user: what a task creator or an inference user runs against a hub (uses ``deai.node.participant``).

- :func:`make_task` / :func:`submit_task`: build a task's blobs and post it, escrowing its budget;
- :func:`request_inference`: pay for one verified inference and recheck the answer on the ledger.
"""

from deai.node.user.infer import InferenceFailed, request_inference
from deai.node.user.submit import TaskBundle, make_task, submit_task

__all__ = ["InferenceFailed", "TaskBundle", "make_task", "request_inference", "submit_task"]
