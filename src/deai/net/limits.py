"""Request-rate limits of an endpoint: token buckets per sender, per client address and for all
unfunded senders together (keys cost nothing). :class:`RateLimits` is the setting (``deai hub`` runs
with its defaults), :class:`TokenBuckets` the mechanism; :class:`~deai.net.endpoint.Endpoint`
applies them."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimits", "TokenBuckets"]


@dataclass(frozen=True)
class RateLimits:
    """Token buckets: ``*_rate`` requests per second sustained, bursts of up to ``*_burst``.

    ``sender_*`` applies to signed requests (envelopes and uploads), keyed by the verified sender,
    so nobody can spend another's allowance; ``peer_*`` to unsigned HTTP requests (blob downloads,
    health), keyed by the client address (participants behind one address share it).
    Keys cost nothing, so two more buckets bound what fresh keys can do: ``unfunded_*`` is *one*
    bucket shared by every sender without stake or balance (as the endpoint's upload quota says;
    an endpoint without an upload policy has no such bucket), and ``refused_*`` is per client
    address, spent by each envelope refused before its sender is known to be honest (malformed,
    badly signed, stale, replayed...): an address past it gets 429 before its bytes are parsed.
    At most ``max_keys`` buckets are kept (least recently used dropped: a dropped key starts full).

    Measured in ``deai simulate scenarios/demo.yaml`` over HTTP on a busy 2-core machine: the
    busiest daemon sent 1,169 signed requests in 44 s (26/s, its long poll answering at once while
    a round runs), at most 60 in any second; at 50/s it never needed more than 20 of its burst of
    100. A sender just over the rate is told to wait ~1/rate s, which the client does.
    """

    sender_rate: float = 50.0
    sender_burst: float = 100.0
    peer_rate: float = 200.0
    peer_burst: float = 1000.0
    unfunded_rate: float = 100.0
    unfunded_burst: float = 200.0
    refused_rate: float = 20.0
    refused_burst: float = 100.0
    max_keys: int = 100_000


class TokenBuckets:
    """One token bucket per key, refilled at ``rate`` per second up to ``burst``. Thread-safe."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self.max_keys, self.clock = rate, burst, max_keys, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str, *, spend: bool = True) -> float:
        """Spend one token of ``key``: 0.0 if admitted, else the seconds until one is available.
        With ``spend=False`` only look (a key never seen is not stored)."""
        now = self.clock()
        with self._lock:
            if not spend and key not in self._buckets:
                return 0.0
            tokens, at = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1 if wait == 0.0 and spend else tokens, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait
