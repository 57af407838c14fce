"""The network configuration: the genesis of a ledger.

A :class:`NetworkConfig` fixes everything the state machine needs besides the transactions: the
network (chain) id that every transaction must carry, the privileged accounts (the minter, the
reputation oracle, the slasher), minimum stakes per role, the unbonding delay, slashing fractions,
the reputation weighting of executor draws and size limits. Its hash is the *genesis hash*, the
``prev_hash`` of the first log entry, so two ledgers with different configs never share a log.

Amounts are integers of the smallest unit. Fractions are integer basis points (1/10,000).
Durations are milliseconds of the ledger clock (see :mod:`deai.ledger.base`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from deai.core.accounts import check_address
from deai.core.encoding import canonical, sha256, to_hex
from deai.core.errors import EncodingError
from deai.ledger.errors import LedgerError

__all__ = ["BPS", "COMPUTE", "DATA", "HOST", "MAX_AMOUNT", "MAX_DURATION_MS", "ROLES", "NetworkConfig"]

DATA = "data_provider"
COMPUTE = "compute_provider"
HOST = "host"
ROLES = (DATA, COMPUTE, HOST)

BPS = 10_000  # basis points: the denominator of every fraction
MAX_AMOUNT = 2**53 - 1  # canonical JSON integers stay within +-2**53
# The longest a job window or the resolve grace may be: a job locks its committed executors' stakes
# for at most two windows plus the grace, so these bound how long anyone's stake can be frozen.
MAX_DURATION_MS = 86_400_000
MAX_RESOLVERS = 16


def _default_min_stake() -> dict[str, int]:
    return {DATA: 100, COMPUTE: 1_000, HOST: 1_000}


@dataclass(frozen=True)
class NetworkConfig:
    """Genesis parameters. ``minter`` is required; every other field has a working default.

    - ``network``: the chain id carried (and signed) by every transaction.
    - ``minter``: the only account allowed to ``mint`` (genesis allocations, faucet).
    - ``reputation_oracle`` / ``slasher``: accounts allowed to ``update_reputation`` / ``slash``
      (default: the minter).
    - ``min_stake``: the least stake per role; a stake below it is refused, an unstake may only
      leave zero or at least the minimum.
    - ``unbonding_delay_ms``: how long unstaked funds wait before ``withdraw``.
    - ``slash_bps``: the fraction of a faulty executor's role stake that a job resolution slashes;
      ``slash_reward_bps`` of the slashed amount goes to the job's honest executors, the rest is
      burned (the ``burned`` bucket of the supply).
    - ``stake_fee_ratio_bps``: an executor needs a stake of at least ``fee * ratio / 10,000`` to be
      drawn for a job paying ``fee`` per executor (the break-even rule of DESIGN.md).
    - ``rep_step_bps``, ``rep_min_bps``, ``rep_max_bps``: an account's draw weight is its stake times
      ``clamp(10,000 + score * rep_step_bps, rep_min_bps, rep_max_bps) / 10,000``.
    - ``rep_job_win`` / ``rep_job_fault``: reputation change of an executor whose result was
      accepted / who was slashed by a job resolution.
    - ``resolve_grace_ms``: after a job's reveal deadline plus this grace, anyone may resolve a job
      whose designated resolver stays silent (by exact majority). At most one day.
    - ``min_job_fee``: the least fee per executor of a job (> 0): a job is never free to create.
    - ``max_job_window_ms``: the longest commit or reveal window of a job (at most one day), so a
      committed executor's stake is locked for at most ``2 * max_job_window_ms + resolve_grace_ms``.
    - ``resolvers``: accounts (at most 16; e.g. the hub serving inference) that any job creator may
      name as the ``resolver`` of a job outside a task, besides the creator itself.
    - ``max_tx_bytes``, ``max_executors``: size limits of transactions (lists in transaction bodies
      are capped by their field kinds: 256 input hashes, 64 proof hashes or addresses).
    """

    minter: str
    network: str = "deai-local"
    reputation_oracle: str | None = None
    slasher: str | None = None
    min_stake: dict[str, int] = field(default_factory=_default_min_stake)
    unbonding_delay_ms: int = 86_400_000
    slash_bps: int = 5_000
    slash_reward_bps: int = 5_000
    stake_fee_ratio_bps: int = 100_000
    rep_step_bps: int = 500
    rep_min_bps: int = 1_000
    rep_max_bps: int = 30_000
    rep_job_win: int = 1
    rep_job_fault: int = -5
    resolve_grace_ms: int = 3_600_000
    min_job_fee: int = 1
    max_job_window_ms: int = 600_000
    resolvers: tuple[str, ...] = ()
    max_tx_bytes: int = 65_536
    max_executors: int = 64

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "minter", check_address(self.minter))
            for name in ("reputation_oracle", "slasher"):
                value = getattr(self, name)
                object.__setattr__(self, name, self.minter if value is None else check_address(value))
            if not isinstance(self.resolvers, (list, tuple)) or len(self.resolvers) > MAX_RESOLVERS:
                raise LedgerError(f"network config: resolvers must list at most {MAX_RESOLVERS} addresses")
            object.__setattr__(self, "resolvers", tuple(check_address(a) for a in self.resolvers))
        except EncodingError as exc:
            raise LedgerError(f"network config: {exc}") from exc
        if not isinstance(self.network, str) or not 0 < len(self.network) <= 64:
            raise LedgerError("network config: network must be a string of 1 to 64 characters")
        if set(self.min_stake) != set(ROLES) or any(
            not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_AMOUNT
            for v in self.min_stake.values()
        ):
            raise LedgerError(f"network config: min_stake needs a non-negative int for each of {ROLES}")
        for name in ("slash_bps", "slash_reward_bps"):
            if not 0 <= getattr(self, name) <= BPS:
                raise LedgerError(f"network config: {name} must lie in [0, {BPS}]")
        if not 0 < self.rep_min_bps <= BPS <= self.rep_max_bps:
            raise LedgerError("network config: need 0 < rep_min_bps <= 10,000 <= rep_max_bps")
        for name in ("unbonding_delay_ms", "stake_fee_ratio_bps", "rep_step_bps", "resolve_grace_ms"):
            if getattr(self, name) < 0:
                raise LedgerError(f"network config: {name} must be >= 0")
        grace, window = self.resolve_grace_ms, self.max_job_window_ms
        if not 0 <= grace <= MAX_DURATION_MS or not 0 < window <= MAX_DURATION_MS:
            raise LedgerError(
                f"network config: resolve_grace_ms must lie in [0, {MAX_DURATION_MS}] and"
                f" max_job_window_ms in [1, {MAX_DURATION_MS}]"
            )
        if not 0 < self.min_job_fee <= MAX_AMOUNT:
            raise LedgerError("network config: min_job_fee must be a positive amount (a job is never free)")
        if self.max_executors < 1 or self.max_tx_bytes < 1024:
            raise LedgerError("network config: size limits too small")

    def role_minimum(self, role: str) -> int:
        return self.min_stake[role]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        if not isinstance(data, dict):
            raise LedgerError("network config must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise LedgerError(f"network config: unknown field(s) {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise LedgerError(f"network config: {exc}") from exc

    @property
    def genesis_hash(self) -> str:
        """0x-hex SHA-256 of the canonical config: the ``prev_hash`` of log entry 0."""
        return to_hex(sha256(canonical({"deai-ledger-genesis": self.to_dict()})))
