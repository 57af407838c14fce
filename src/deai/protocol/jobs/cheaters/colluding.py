"""``colluding``: a group sharing a secret that all upload the same wrong output.

Every member derives the same perturbation from ``(secret, job id)``, so their digests agree
bit for bit and they vote as a bloc. They win only where they hold a majority of the required
executors -- the chance ``q`` of the deterrence rule -- and are slashed everywhere else.
Build members with ``make_executor("colluding", account, store, secret=b"...")``.
"""

from __future__ import annotations

import torch

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.encoding import sha256
from deai.protocol.jobs.cheaters.base import CHEATERS
from deai.protocol.jobs.executor import Executor, JobView
from deai.protocol.jobs.kinds.base import Tensors

__all__ = ["Colluding"]


@CHEATERS.register("colluding")
class Colluding(Executor):
    def __init__(self, account: Account, store: BlobStore, *, secret: bytes = b"cartel", **kwargs) -> None:
        super().__init__(account, store, **kwargs)
        self.secret = secret

    def produce(self, view: JobView) -> Tensors:
        out = self.compute(view.spec)
        seed = int.from_bytes(sha256(self.secret + bytes.fromhex(view.job_id[2:]))[:8], "big")
        gen = torch.Generator().manual_seed(seed)
        return {
            k: (v + 0.1 * torch.randn(v.shape, generator=gen)).to(v.dtype) if v.is_floating_point() else v
            for k, v in out.items()
        }
