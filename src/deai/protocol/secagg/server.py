"""The server's side of a round, as a sans-IO state machine.

Feed it every client message with :meth:`receive` (a bad message raises and changes nothing; the
round goes on without it). When a phase's deadline passes, the driver calls :meth:`close_phase`:
providers that did not answer are dropped, and it returns the next message for each live provider.
After the unmask phase :attr:`result` holds the sum of the survivors' updates, or the round raises
:class:`RoundAborted`. The server never sees a single provider's update in the clear.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from deai.core.accounts import recover_signer
from deai.core.errors import BadSignature
from deai.protocol.secagg import shamir
from deai.protocol.secagg.client import check_index_list
from deai.protocol.secagg.config import SecAggConfig
from deai.protocol.secagg.crypto import KEY_BYTES, agree, commit, expand_mask
from deai.protocol.secagg.errors import (
    AuthenticationFailed,
    DuplicateMessage,
    ForgedShare,
    MalformedMessage,
    RoundAborted,
    UnexpectedMessage,
)
from deai.protocol.secagg.messages import (
    CIPHERTEXT_BYTES,
    HASH_BYTES,
    KIND_MASK_KEY,
    KIND_SELF_MASK,
    SIGNATURE_BYTES,
    AdvertiseKeys,
    ConsistencyRequest,
    ConsistencySignature,
    KeysBroadcast,
    MaskedInput,
    Message,
    ShareKeys,
    SharesDelivery,
    UnmaskRequest,
    UnmaskShares,
)
from deai.protocol.secagg.phases import Phase, keys_statement, survivors_statement

__all__ = ["SecAggResult", "SecAggServer"]

_EXPECTED = {
    Phase.ADVERTISE: AdvertiseKeys,
    Phase.SHARE: ShareKeys,
    Phase.MASKED: MaskedInput,
    Phase.CONSISTENCY: ConsistencySignature,
    Phase.UNMASK: UnmaskShares,
}


@dataclass(frozen=True)
class SecAggResult:
    """The unmasked sum of the ``included`` providers' clipped, quantized updates."""

    total: np.ndarray  # float64 [dim]
    included: tuple[int, ...]
    dropped: tuple[int, ...]
    error_bound: float  # max |total - sum of clipped float updates| per coordinate


class SecAggServer:
    def __init__(self, config: SecAggConfig) -> None:
        self.config = config
        self.phase = Phase.ADVERTISE
        self.result: SecAggResult | None = None
        self.refused: list[tuple[int, str]] = []  # (provider, reason) of refused messages
        self._live: tuple[int, ...] = tuple(range(config.n))
        self._got: dict[int, Message] = {}
        self._keys: dict[int, tuple[bytes, bytes, bytes]] = {}
        self._shares: dict[int, ShareKeys] = {}
        self._masked: dict[int, np.ndarray] = {}
        self._sigs: dict[int, bytes] = {}
        self._revealed: dict[int, list[tuple[int, int]]] = {}
        self._u1: tuple[int, ...] = ()
        self._u2: tuple[int, ...] = ()
        self._u3: tuple[int, ...] = ()

    # -- receiving ------------------------------------------------------------------------------

    def receive(self, msg: Message) -> None:
        """Check and store one client message; raises (storing nothing) if it must be refused."""
        try:
            self._receive(msg)
        except (
            MalformedMessage,
            DuplicateMessage,
            UnexpectedMessage,
            AuthenticationFailed,
            ForgedShare,
        ) as exc:
            self.refused.append((getattr(msg, "party", -1), str(exc)))
            raise

    def _receive(self, msg: Message) -> None:
        expected = _EXPECTED.get(self.phase)
        if expected is None:
            raise UnexpectedMessage(f"the round is {self.phase.value}; no message is accepted")
        if not isinstance(msg, expected):
            raise UnexpectedMessage(
                f"phase {self.phase.value} takes {expected.__name__}, got {type(msg).__name__}"
            )
        u = msg.party
        if u not in self._live:
            raise UnexpectedMessage(f"provider {u} is not live in phase {self.phase.value} (dropped or late)")
        if u in self._got:
            raise DuplicateMessage(f"provider {u} already sent its {expected.__name__}")
        getattr(self, f"_check_{self.phase.value}")(msg)
        self._got[u] = msg

    def _check_advertise(self, msg: AdvertiseKeys) -> None:
        if len(msg.enc_key) != KEY_BYTES or len(msg.mask_key) != KEY_BYTES:
            raise MalformedMessage(f"keys of provider {msg.party} have the wrong size")
        stmt = keys_statement(self.config.round_id, msg.party, msg.enc_key, msg.mask_key)
        self._check_sig(stmt, msg.signature, msg.party, "keys")
        self._keys[msg.party] = (msg.enc_key, msg.mask_key, msg.signature)

    def _check_share(self, msg: ShareKeys) -> None:
        u = msg.party
        holders = tuple(h for h, *_ in msg.entries)
        check_index_list(holders, self.config.n, "share list")
        want = tuple(v for v in self.config.graph[u] if v in self._u1)
        if holders != want:
            raise MalformedMessage(f"provider {u} must share with exactly its live neighbours {list(want)}")
        for _h, ct, cb, cs in msg.entries:
            if len(ct) != CIPHERTEXT_BYTES or len(cb) != HASH_BYTES or len(cs) != HASH_BYTES:
                raise MalformedMessage(f"a share entry of provider {u} has the wrong size")
        if len(msg.seed_commitment) != HASH_BYTES:
            raise MalformedMessage(f"seed commitment of provider {u} has the wrong size")
        self._shares[u] = msg

    def _check_masked(self, msg: MaskedInput) -> None:
        v = msg.vector
        if (
            not isinstance(v, np.ndarray)
            or v.shape != (self.config.dim,)
            or v.dtype != self.config.ring.dtype
        ):
            raise MalformedMessage(
                f"masked vector of provider {msg.party} must be {self.config.dim} "
                f"{np.dtype(self.config.ring.dtype)} ring elements"
            )
        self._masked[msg.party] = v

    def _check_consistency(self, msg: ConsistencySignature) -> None:
        self._check_sig(
            survivors_statement(self.config.round_id, self._u3), msg.signature, msg.party, "survivor set"
        )
        self._sigs[msg.party] = msg.signature

    def _check_unmask(self, msg: UnmaskShares) -> None:
        cfg, v = self.config, msg.party
        owners = tuple(o for o, *_ in msg.entries)
        check_index_list(owners, cfg.n, "revealed shares")
        held = {o for o in cfg.graph[v] if o in self._u2}
        accepted = []
        for owner, kind, share in msg.entries:
            if owner not in held:
                raise MalformedMessage(f"provider {v} holds no share of provider {owner}")
            want = KIND_SELF_MASK if owner in self._u3 else KIND_MASK_KEY
            if kind != want:
                raise ForgedShare(f"provider {v} revealed the wrong kind of share of provider {owner}")
            y = shamir.decode_share(share)
            label = b"b" if kind == KIND_SELF_MASK else b"s"
            entry = next(e for e in self._shares[owner].entries if e[0] == v)
            if commit(cfg.round_id, label, owner, v, share) != (
                entry[2] if kind == KIND_SELF_MASK else entry[3]
            ):
                raise ForgedShare(
                    f"share of provider {owner} revealed by provider {v} does not match its commitment"
                )
            accepted.append((owner, v + 1, y))
        for owner, x, y in accepted:
            self._revealed.setdefault(owner, []).append((x, y))

    def _check_sig(self, statement: bytes, sig: bytes, party: int, what: str) -> None:
        if len(sig) != SIGNATURE_BYTES:
            raise MalformedMessage(f"{what} signature of provider {party} has the wrong size")
        try:
            ok = recover_signer(statement, sig) == self.config.roster[party]
        except BadSignature:
            ok = False
        if not ok:
            raise AuthenticationFailed(f"{what} signature of provider {party} does not verify")

    # -- closing phases -------------------------------------------------------------------------

    def close_phase(self) -> dict[int, Message]:
        """End the current phase; returns the next message per live provider (empty when done)."""
        if self.phase not in _EXPECTED:
            raise UnexpectedMessage(f"the round is already {self.phase.value}")
        live = tuple(sorted(self._got))
        if len(live) < self.config.survivors_needed:
            phase, self.phase = self.phase, Phase.ABORTED
            raise RoundAborted(
                f"only {len(live)} providers answered in phase {phase.value}, "
                f"need {self.config.survivors_needed}"
            )
        try:
            out = getattr(self, f"_close_{self.phase.value}")(live)
        except RoundAborted:
            self.phase = Phase.ABORTED
            raise
        self._live, self._got = live, {}
        return out

    def _close_advertise(self, live: tuple[int, ...]) -> dict[int, Message]:
        self._u1 = live
        self.phase = Phase.SHARE
        return {
            u: KeysBroadcast(u, tuple((v, *self._keys[v]) for v in self.config.graph[u] if v in live))
            for u in live
        }

    def _close_share(self, live: tuple[int, ...]) -> dict[int, Message]:
        self._u2 = live
        self.phase = Phase.MASKED
        cts = {(d, e[0]): e[1] for d in live for e in self._shares[d].entries}
        return {
            u: SharesDelivery(u, tuple((d, cts[d, u]) for d in self.config.graph[u] if d in live))
            for u in live
        }

    def _close_masked(self, live: tuple[int, ...]) -> dict[int, Message]:
        self._u3 = live
        self.phase = Phase.CONSISTENCY
        return {u: ConsistencyRequest(u, live) for u in live}

    def _close_consistency(self, live: tuple[int, ...]) -> dict[int, Message]:
        self.phase = Phase.UNMASK
        dropped = tuple(u for u in self._u2 if u not in self._u3)
        sigs = tuple((u, self._sigs[u]) for u in live)
        return {u: UnmaskRequest(u, self._u3, dropped, sigs) for u in live}

    def _close_unmask(self, live: tuple[int, ...]) -> dict[int, Message]:
        cfg = self.config
        rid, dtype = cfg.round_id, cfg.ring.dtype
        total = np.sum(np.stack([self._masked[u] for u in self._u3]), axis=0, dtype=dtype)
        for u in self._u3:

            def seed_ok(s: bytes, u: int = u) -> bool:
                return commit(rid, b"seed", u, s) == self._shares[u].seed_commitment

            seed = self._recover(u, seed_ok)
            total -= expand_mask(seed, cfg.dim, dtype)
        for v in self._u2:
            if v in self._u3:
                continue
            mask_pk = self._keys[v][1]

            def key_ok(s: bytes, pk: bytes = mask_pk) -> bool:
                return X25519PrivateKey.from_private_bytes(s).public_key().public_bytes_raw() == pk

            raw = self._recover(v, key_ok)
            sk = X25519PrivateKey.from_private_bytes(raw)
            for w in cfg.graph[v]:
                if w in self._u3:  # w added +mask if w < v, else -mask
                    mask = expand_mask(agree(sk, self._keys[w][1], rid, b"mask"), cfg.dim, dtype)
                    if w < v:
                        total -= mask
                    else:
                        total += mask
        m = len(self._u3)
        self.result = SecAggResult(
            total=cfg.ring.decode(total, m),
            included=self._u3,
            dropped=tuple(u for u in range(cfg.n) if u not in self._u3),
            error_bound=cfg.ring.error_bound(m),
        )
        self.phase = Phase.DONE
        return {}

    def _recover(self, owner: int, check: Callable[[bytes], bool]) -> bytes:
        points = self._revealed.get(owner, [])
        t = self.config.shares_needed
        if len(points) < t:
            raise RoundAborted(f"only {len(points)} shares of provider {owner} were revealed, need {t}")
        secret = shamir.combine(points[:t])
        if not check(secret):
            # Every revealed share matched its dealer's commitment, so the dealer itself dealt
            # shares that do not lie on one polynomial: no sum can be trusted.
            raise RoundAborted(f"provider {owner} dealt inconsistent shares; its secret cannot be recovered")
        return secret
