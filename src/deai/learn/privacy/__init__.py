"""Privacy for providers: client-level DP with accounting, DP-SGD, PII scrubbing, leakage audit.

- :mod:`~deai.learn.privacy.client_dp`: clip each update, add Gaussian noise (central, distributed
  or local); :mod:`~deai.learn.privacy.adaptive`: adaptive clipping by quantile tracking.
- :mod:`~deai.learn.privacy.accountant`: (epsilon, delta) after every round from Opacus's RDP/PRV
  accountants for the subsampled Gaussian.
- :mod:`~deai.learn.privacy.dpsgd`: sample-level DP-SGD for local training via Opacus.
- :mod:`~deai.learn.privacy.pii`: scrub e-mails, phones, cards, IPs, national IDs from text and tables.
- :mod:`~deai.learn.privacy.audit`: membership-inference attacks reporting ROC AUC.

What the network runs: client-level DP (:class:`ClientDP` on each provider's update, and in the
``dp_aggregate`` job kind for ``central`` mode) with the accountant sizing the noise.
**Library pieces, not network features:** DP-SGD (a task asking ``dp.mode: dpsgd`` is refused by
the network's task planning), the PII scrubber and the membership-inference audit (run by
``benchmarks/privacy.py`` and a data owner's own scripts).
"""

from deai.learn.privacy.accountant import PrivacyAccountant, noise_multiplier_for
from deai.learn.privacy.adaptive import AdaptiveClipping
from deai.learn.privacy.client_dp import ClientDP
from deai.learn.privacy.errors import BudgetExceeded, PrivacyError
from deai.learn.privacy.pii import find_pii, scrub_dataframe, scrub_text

__all__ = [
    "AdaptiveClipping",
    "BudgetExceeded",
    "ClientDP",
    "PrivacyAccountant",
    "PrivacyError",
    "find_pii",
    "noise_multiplier_for",
    "scrub_dataframe",
    "scrub_text",
]
