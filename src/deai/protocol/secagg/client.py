"""The provider's side of a round, as a sans-IO state machine: :meth:`start` gives the first message,
:meth:`handle` takes each server message and returns the reply.

An honest client refuses (raises, and takes no further part) whenever the server asks for something
that could expose its input: too few neighbours to hide behind, a forged or misrouted share, a
survivor set other than the one it signed or one without a majority of valid signatures, or a request
for both the self-mask share and the mask-key share of one provider (the SecAgg consistency rule).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from deai.core.accounts import Account, recover_signer
from deai.core.errors import BadSignature
from deai.protocol.secagg import shamir
from deai.protocol.secagg.config import SecAggConfig
from deai.protocol.secagg.crypto import (
    KEY_BYTES,
    Randomness,
    agree,
    commit,
    decrypt_share,
    encrypt_share,
    expand_mask,
    private_key,
    public_bytes,
)
from deai.protocol.secagg.errors import (
    AuthenticationFailed,
    DuplicateMessage,
    InconsistentRequest,
    MalformedMessage,
    RoundAborted,
    SecAggError,
    UnexpectedMessage,
)
from deai.protocol.secagg.messages import (
    CIPHERTEXT_BYTES,
    KIND_MASK_KEY,
    KIND_SELF_MASK,
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

__all__ = ["SecAggClient", "check_index_list"]


def check_index_list(xs: tuple[int, ...], n: int, what: str) -> None:
    """Indices must be strictly increasing (so sorted and without duplicates) and inside the roster."""
    if any(not 0 <= x < n for x in xs):
        raise MalformedMessage(f"{what} holds an index outside the roster")
    if any(a >= b for a, b in itertools.pairwise(xs)):
        raise DuplicateMessage(f"{what} is not strictly increasing (duplicate or unsorted index)")


class SecAggClient:
    """Provider ``index`` of the round, signing with ``account`` (whose address is in the roster).

    ``seed`` makes the client's keys and randomness reproducible (simulations only); by default they
    come from the OS.
    """

    def __init__(self, config: SecAggConfig, index: int, account: Account, seed: bytes | None = None) -> None:
        if not 0 <= index < config.n or config.roster[index] != account.address:
            raise ValueError(f"account {account.address} is not provider {index} of the roster")
        self.config, self.index, self.account = config, index, account
        self.phase = Phase.ADVERTISE
        self.clipped = 0  # coordinates clipped to the ring's range (overflow accounting)
        self._rand = Randomness(seed)
        self._neighbours = frozenset(config.graph[index])
        self._started = False
        self._signed: tuple[int, ...] | None = None
        self._input: np.ndarray | None = None  # the quantized update, from start() to phase 3

    # -- phase 1 --------------------------------------------------------------------------------

    def start(self, update: np.ndarray) -> AdvertiseKeys:
        """Quantize ``update`` (refusing non-finite values) and advertise two fresh public keys."""
        if self._started:
            raise DuplicateMessage("client already started")
        update = np.asarray(update)
        if update.shape != (self.config.dim,):
            raise MalformedMessage(f"update has shape {update.shape}, expected ({self.config.dim},)")
        self._input, self.clipped = self.config.ring.encode(update)
        self._enc_sk, self._mask_sk = private_key(self._rand), private_key(self._rand)
        enc_pk, mask_pk = public_bytes(self._enc_sk), public_bytes(self._mask_sk)
        sig = self.account.sign(keys_statement(self.config.round_id, self.index, enc_pk, mask_pk))
        self._started = True
        return AdvertiseKeys(self.index, enc_pk, mask_pk, sig)

    # -- dispatch -------------------------------------------------------------------------------

    def handle(self, msg: Message) -> Message:
        """The reply to a server message; raises (and aborts this client) if it must be refused."""
        expected = {
            Phase.ADVERTISE: KeysBroadcast,
            Phase.SHARE: SharesDelivery,
            Phase.MASKED: ConsistencyRequest,
            Phase.CONSISTENCY: UnmaskRequest,
        }.get(self.phase)
        if expected is None or not self._started:
            raise UnexpectedMessage(f"client {self.index} takes no message in phase {self.phase.value}")
        if not isinstance(msg, expected):
            raise UnexpectedMessage(f"expected {expected.__name__}, got {type(msg).__name__}")
        if msg.party != self.index:
            raise UnexpectedMessage(f"message addressed to provider {msg.party}, not {self.index}")
        handlers: dict[type[Message], Callable[[Any], Message]] = {
            KeysBroadcast: self._on_keys,
            SharesDelivery: self._on_shares,
            ConsistencyRequest: self._on_consistency,
            UnmaskRequest: self._on_unmask,
        }
        handler = handlers[expected]
        try:
            return handler(msg)
        except SecAggError:
            self.phase = Phase.ABORTED
            raise

    # -- phase 2 --------------------------------------------------------------------------------

    def _on_keys(self, msg: KeysBroadcast) -> ShareKeys:
        cfg = self.config
        peers = tuple(p for p, *_ in msg.keys)
        check_index_list(peers, cfg.n, "key broadcast")
        if not set(peers) <= self._neighbours:
            raise InconsistentRequest("key broadcast names providers that are not this client's neighbours")
        if len(peers) < cfg.shares_needed:
            raise RoundAborted(f"only {len(peers)} neighbours advertised keys, need {cfg.shares_needed}")
        self._peer_keys = {}
        for p, enc_pk, mask_pk, sig in msg.keys:
            if len(enc_pk) != KEY_BYTES or len(mask_pk) != KEY_BYTES:
                raise MalformedMessage(f"keys of provider {p} have the wrong size")
            try:
                signer = recover_signer(keys_statement(cfg.round_id, p, enc_pk, mask_pk), sig)
            except BadSignature as exc:
                raise AuthenticationFailed(f"keys of provider {p}: {exc}") from exc
            if signer != cfg.roster[p]:
                raise AuthenticationFailed(f"keys of provider {p} are not signed by its account")
            self._peer_keys[p] = (enc_pk, mask_pk)
        seed = self._rand(shamir.SECRET_BYTES)
        xs = [p + 1 for p in peers]
        b_shares = shamir.split(seed, xs, cfg.shares_needed, self._rand)
        s_shares = shamir.split(self._mask_sk.private_bytes_raw(), xs, cfg.shares_needed, self._rand)
        entries = []
        for p, b, s in zip(peers, b_shares, s_shares, strict=True):
            bb, sb = shamir.encode_share(b), shamir.encode_share(s)
            plain = self.index.to_bytes(4, "big") + p.to_bytes(4, "big") + bb + sb
            key = agree(self._enc_sk, self._peer_keys[p][0], cfg.round_id, b"enc")
            ct = encrypt_share(key, self.index, p, cfg.round_id, plain)
            entries.append(
                (
                    p,
                    ct,
                    commit(cfg.round_id, b"b", self.index, p, bb),
                    commit(cfg.round_id, b"s", self.index, p, sb),
                )
            )
        self._seed = seed
        self.phase = Phase.SHARE
        return ShareKeys(self.index, tuple(entries), commit(cfg.round_id, b"seed", self.index, seed))

    # -- phase 3 --------------------------------------------------------------------------------

    def _on_shares(self, msg: SharesDelivery) -> MaskedInput:
        cfg = self.config
        dealers = tuple(d for d, _ in msg.ciphertexts)
        check_index_list(dealers, cfg.n, "share delivery")
        if not set(dealers) <= set(self._peer_keys):
            raise InconsistentRequest("share delivery holds shares from providers that advertised no keys")
        if len(dealers) < cfg.shares_needed:
            # Masking with fewer neighbours would leave this input exposed once its seed is revealed.
            raise RoundAborted(f"only {len(dealers)} neighbours sent shares, need {cfg.shares_needed}")
        self._held = {}
        for d, ct in msg.ciphertexts:
            if len(ct) != CIPHERTEXT_BYTES:
                raise MalformedMessage(f"share ciphertext from provider {d} has the wrong size")
            key = agree(self._enc_sk, self._peer_keys[d][0], cfg.round_id, b"enc")
            plain = decrypt_share(key, d, self.index, cfg.round_id, ct)
            if int.from_bytes(plain[:4], "big") != d or int.from_bytes(plain[4:8], "big") != self.index:
                raise InconsistentRequest(f"share from provider {d} was addressed to someone else")
            k = shamir.SHARE_BYTES
            self._held[d] = (plain[8 : 8 + k], plain[8 + k :])
        dtype = cfg.ring.dtype
        assert self._input is not None  # set by start(); the phase order reaches here once
        y = self._input + expand_mask(self._seed, cfg.dim, dtype)
        for d in dealers:
            mask = expand_mask(
                agree(self._mask_sk, self._peer_keys[d][1], cfg.round_id, b"mask"), cfg.dim, dtype
            )
            if self.index < d:
                y += mask
            else:
                y -= mask
        self._input = None  # the plain update is no longer needed
        self.phase = Phase.MASKED
        return MaskedInput(self.index, y)

    # -- phase 4 --------------------------------------------------------------------------------

    def _on_consistency(self, msg: ConsistencyRequest) -> ConsistencySignature:
        cfg = self.config
        check_index_list(msg.survivors, cfg.n, "survivor set")
        if self.index not in msg.survivors:
            raise InconsistentRequest("survivor set omits this client, which sent its masked input")
        if len(msg.survivors) < cfg.survivors_needed:
            raise RoundAborted(f"only {len(msg.survivors)} survivors, need {cfg.survivors_needed}")
        self._signed = tuple(msg.survivors)
        self.phase = Phase.CONSISTENCY
        return ConsistencySignature(
            self.index, self.account.sign(survivors_statement(cfg.round_id, msg.survivors))
        )

    # -- phase 5 --------------------------------------------------------------------------------

    def _on_unmask(self, msg: UnmaskRequest) -> UnmaskShares:
        cfg = self.config
        check_index_list(msg.survivors, cfg.n, "survivor set")
        check_index_list(msg.dropped, cfg.n, "dropped set")
        if tuple(msg.survivors) != self._signed:
            raise InconsistentRequest(
                "unmask request names a survivor set other than the one this client signed"
            )
        both = set(msg.survivors) & set(msg.dropped)
        if both:
            raise InconsistentRequest(
                f"server asks for both the self-mask share and the mask-key share of providers {sorted(both)}"
            )
        statement = survivors_statement(cfg.round_id, msg.survivors)
        signers = tuple(p for p, _ in msg.signatures)
        check_index_list(signers, cfg.n, "signer list")
        if not set(signers) <= set(msg.survivors) or len(signers) < cfg.survivors_needed:
            raise InconsistentRequest(
                f"need {cfg.survivors_needed} signatures from survivors, got {len(signers)}"
            )
        for p, sig in msg.signatures:
            try:
                ok = recover_signer(statement, sig) == cfg.roster[p]
            except BadSignature:
                ok = False
            if not ok:
                raise AuthenticationFailed(f"survivor-set signature of provider {p} does not verify")
        entries = []
        survivors, dropped = set(msg.survivors), set(msg.dropped)
        for d in sorted(self._held):
            b_share, s_share = self._held[d]
            if d in survivors:
                entries.append((d, KIND_SELF_MASK, b_share))
            elif d in dropped:
                entries.append((d, KIND_MASK_KEY, s_share))
        self._held = {}  # answer once: a second request finds nothing to reveal
        self.phase = Phase.DONE
        return UnmaskShares(self.index, tuple(entries))
