"""Secure aggregation (SecAgg+ family) as sans-IO state machines: the server learns only the sum.

Per round: advertise keys (X25519, signed by the provider's account) -> share keys (Shamir t-of-k
shares of a self-mask seed and of the mask private key, AES-GCM encrypted to each neighbour, with
commitments) -> masked input (quantized update + self mask + pairwise masks from ChaCha20) ->
consistency (providers sign the survivor set) -> unmask (self-mask shares of survivors, mask-key
shares of the dropped). Each provider works with O(log n) neighbours of a seeded random graph.
"""

from deai.protocol.secagg.client import SecAggClient
from deai.protocol.secagg.config import SecAggConfig
from deai.protocol.secagg.driver import RoundStats, run_round
from deai.protocol.secagg.errors import RoundAborted, SecAggError
from deai.protocol.secagg.server import SecAggResult, SecAggServer

__all__ = [
    "RoundAborted",
    "RoundStats",
    "SecAggClient",
    "SecAggConfig",
    "SecAggError",
    "SecAggResult",
    "SecAggServer",
    "run_round",
]
