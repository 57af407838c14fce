"""Traffic counters and a bandwidth model: measured bytes turned into transfer seconds.

Every transport counts what it moves in a :class:`Traffic` record (bytes sent and received, of which
blob bodies, and requests). A :class:`Link` (uplink and downlink in Mbit/s, latency in ms) turns such
counts into seconds; :class:`~deai.net.memory.MemoryTransport` given a link accumulates the seconds its
requests would have taken over it, so a simulation on one machine can estimate wall time on home links.

The round-time model (:func:`round_seconds`, :func:`time_to_target`) is deliberately simple; what a
user must know about it:

- **Serial per provider.** In a round a provider downloads the model, computes (measured local time),
  then uploads its update, one after the other over its own link: ``download + compute + upload``,
  plus one latency per request. No overlap of transfer and compute.
- **Providers in parallel.** Providers do not share links; the round ends when the slowest provider
  has uploaded (the round's time is the maximum over providers).
- **The hub's side** is a fat link by default (not modelled: infinite bandwidth, no queueing). Given a
  ``hub`` link, the round lasts at least as long as the hub needs to send every provider's download
  and receive every upload over it (a lower bound: no contention model beyond the sum of bytes).
- **Not modelled:** verification and scoring jobs, settlement, protocol windows and deadlines, TCP
  slow start, packet loss, HTTP headers (the transports count payload bytes: envelopes, JSON answers,
  blob bodies and upload authorizations).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "HOME",
    "Link",
    "ProviderRound",
    "Traffic",
    "round_seconds",
    "time_to_target",
]

MAX_MBIT = 1e6  # a link speed above 1 Tbit/s is a typo
MAX_LATENCY_MS = 60_000.0


@dataclass(frozen=True)
class Link:
    """One participant's connection: ``up_mbit`` / ``down_mbit`` in megabits (10^6 bits) per second,
    ``latency_ms`` the round-trip time added once per request. Values are checked: positive, finite,
    bounded."""

    up_mbit: float
    down_mbit: float
    latency_ms: float = 0.0

    def __post_init__(self) -> None:
        for name in ("up_mbit", "down_mbit"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or not 0 < v <= MAX_MBIT:
                raise ValueError(f"Link.{name} must be a finite speed in (0, {MAX_MBIT:g}] Mbit/s, got {v!r}")
        lat = self.latency_ms
        if not isinstance(lat, int | float) or not math.isfinite(lat) or not 0 <= lat <= MAX_LATENCY_MS:
            raise ValueError(f"Link.latency_ms must be in [0, {MAX_LATENCY_MS:g}], got {lat!r}")

    def upload_s(self, nbytes: int | float) -> float:
        """Seconds to push ``nbytes`` up this link (no latency)."""
        return _bytes(nbytes) * 8 / (self.up_mbit * 1e6)

    def download_s(self, nbytes: int | float) -> float:
        """Seconds to pull ``nbytes`` down this link (no latency)."""
        return _bytes(nbytes) * 8 / (self.down_mbit * 1e6)

    def transfer_s(self, sent: int | float, received: int | float, requests: int | float = 0) -> float:
        """Seconds for ``requests`` requests moving ``sent`` bytes up and ``received`` down:
        one latency per request plus both transfers, serially."""
        if not math.isfinite(requests) or requests < 0:
            raise ValueError(f"requests must be a non-negative count, got {requests!r}")
        return requests * self.latency_ms / 1000 + self.upload_s(sent) + self.download_s(received)


# A home connection as the benchmark assumes it: 10 Mbit/s up, 100 Mbit/s down, 30 ms round trip.
HOME = Link(up_mbit=10.0, down_mbit=100.0, latency_ms=30.0)


def _bytes(n: int | float) -> float:
    if not isinstance(n, int | float) or not math.isfinite(n) or n < 0:
        raise ValueError(f"a byte count must be finite and non-negative, got {n!r}")
    return float(n)


@dataclass
class Traffic:
    """What one client moved through its transport: bytes ``sent`` and ``received`` (payload: envelope
    bytes, upload authorizations, JSON answers and blob bodies), of which ``blob_sent`` /
    ``blob_received`` are blob bodies, and the number of ``requests``. ``link_seconds`` is the
    simulated time over the transport's link (0 without one)."""

    sent: int = 0
    received: int = 0
    blob_sent: int = 0
    blob_received: int = 0
    requests: int = 0
    link_seconds: float = 0.0

    def add(self, other: Traffic) -> Traffic:
        """The sum of both records (a new one)."""
        return Traffic(
            self.sent + other.sent,
            self.received + other.received,
            self.blob_sent + other.blob_sent,
            self.blob_received + other.blob_received,
            self.requests + other.requests,
            self.link_seconds + other.link_seconds,
        )

    def minus(self, other: Traffic) -> Traffic:
        """What was moved since ``other`` (an earlier snapshot of the same counters)."""
        return Traffic(
            self.sent - other.sent,
            self.received - other.received,
            self.blob_sent - other.blob_sent,
            self.blob_received - other.blob_received,
            self.requests - other.requests,
            self.link_seconds - other.link_seconds,
        )

    def to_json(self) -> dict[str, int | float]:
        return {
            "sent": self.sent,
            "received": self.received,
            "blob_sent": self.blob_sent,
            "blob_received": self.blob_received,
            "requests": self.requests,
            "link_seconds": self.link_seconds,
        }

    @classmethod
    def from_json(cls, data: object, *, limit: int = 1 << 50) -> Traffic:
        """A record read back from JSON (a daemon's ``traffic.json``): every field present, an
        integer (``link_seconds``: a number) in ``[0, limit]``; else ValueError."""
        if not isinstance(data, dict):
            raise ValueError("traffic must be a JSON object")
        out = {}
        for name in ("sent", "received", "blob_sent", "blob_received", "requests"):
            v = data.get(name)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= limit:
                raise ValueError(f"traffic.{name} must be an integer in [0, {limit}], got {str(v)[:40]}")
            out[name] = v
        s = data.get("link_seconds", 0.0)
        if (
            not isinstance(s, int | float)
            or isinstance(s, bool)
            or not math.isfinite(s)
            or not 0 <= s <= limit
        ):
            raise ValueError(f"traffic.link_seconds must be a finite number in [0, {limit}]")
        return cls(**out, link_seconds=float(s))


@dataclass(frozen=True)
class ProviderRound:
    """One provider's round: it downloads ``download_bytes``, computes for ``compute_s`` seconds
    (measured), uploads ``upload_bytes`` in ``requests`` requests over ``link``."""

    download_bytes: int | float
    upload_bytes: int | float
    compute_s: float
    link: Link = field(default=HOME)
    requests: int = 2

    def seconds(self) -> float:
        """``download + compute + upload`` (+ latency per request), serially."""
        if not math.isfinite(self.compute_s) or self.compute_s < 0:
            raise ValueError(f"compute_s must be finite and non-negative, got {self.compute_s!r}")
        return self.link.transfer_s(self.upload_bytes, self.download_bytes, self.requests) + self.compute_s


def round_seconds(providers: Sequence[ProviderRound], hub: Link | None = None) -> float:
    """A round's simulated time: the slowest provider's :meth:`ProviderRound.seconds` (providers in
    parallel); with a ``hub`` link, at least the time the hub needs to send all downloads and receive
    all uploads over it. 0.0 for no providers."""
    slowest = max((p.seconds() for p in providers), default=0.0)
    if hub is None or not providers:
        return slowest
    out = hub.upload_s(sum(float(p.download_bytes) for p in providers))
    into = hub.download_s(sum(float(p.upload_bytes) for p in providers))
    return max(slowest, out + into)


def time_to_target(
    seconds_per_round: Sequence[float], metric: Sequence[float | None], target: float, *, higher: bool = True
) -> float | None:
    """Cumulative seconds until the round whose ``metric`` first reaches ``target`` (``higher``:
    accuracy-like; else perplexity-like, reached when at or below); None if never reached."""
    if len(seconds_per_round) != len(metric):
        raise ValueError(f"{len(seconds_per_round)} round times for {len(metric)} metrics")
    total = 0.0
    for s, m in zip(seconds_per_round, metric, strict=True):
        total += s
        if m is not None and math.isfinite(m) and (m >= target if higher else m <= target):
            return total
    return None
