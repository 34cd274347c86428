"""The server-side fetch of SPEC 5 rule 3, guarded as SPEC 6 requires.

:class:`GuardedFetcher` fetches one allowed public resource (every hop checked, size and time
capped); :class:`SingleFlight` and :class:`NegativeCache` keep many agents from hammering one
origin; :func:`refusal_reason` says which IP addresses may never be connected to.
"""

from .addresses import refusal_reason
from .flight import NegativeCache, SingleFlight
from .guarded import ACCEPTED_TYPES, FetchError, Fetched, GuardedFetcher

__all__ = [
    "ACCEPTED_TYPES",
    "FetchError",
    "Fetched",
    "GuardedFetcher",
    "NegativeCache",
    "SingleFlight",
    "refusal_reason",
]
