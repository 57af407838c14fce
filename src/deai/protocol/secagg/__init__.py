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
from deai.protocol.secagg.errors import (
    AuthenticationFailed,
    DuplicateMessage,
    ForgedShare,
    InconsistentRequest,
    MalformedMessage,
    NonFiniteInput,
    RoundAborted,
    SecAggError,
    UnexpectedMessage,
)
from deai.protocol.secagg.messages import decode, encode, wire_size
from deai.protocol.secagg.phases import Phase
from deai.protocol.secagg.ring import Ring
from deai.protocol.secagg.server import SecAggResult, SecAggServer

__all__ = [
    "AuthenticationFailed",
    "DuplicateMessage",
    "ForgedShare",
    "InconsistentRequest",
    "MalformedMessage",
    "NonFiniteInput",
    "Phase",
    "Ring",
    "RoundAborted",
    "RoundStats",
    "SecAggClient",
    "SecAggConfig",
    "SecAggError",
    "SecAggResult",
    "SecAggServer",
    "UnexpectedMessage",
    "decode",
    "encode",
    "run_round",
    "wire_size",
]
