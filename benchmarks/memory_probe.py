"""Figure 8, run in a fresh interpreter so that no other figure's allocations pollute its RSS.

    python -m benchmarks.memory_probe REDIS_URL UPLOADS BODY_SIZE LOCAL_MAX_BYTES

Uploads UPLOADS distinct resources (distinct URLs and bytes, spread over 100 sessions) through the
middleware's WSGI call and prints, as JSON, level 1's accounted size and the process's VmRSS
before and after.
"""

from __future__ import annotations

import gc
import json
import sys

from benchmarks.harness import body_of, create_session, middleware, upload

SESSIONS = 100


def _status(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def main(redis_url: str, uploads: int, size: int, local_max_bytes: int) -> dict[str, int]:
    mw = middleware(redis_url, local_max_bytes=local_max_bytes)
    sessions = [create_session(mw) for _ in range(SESSIONS)]
    # Warm up: first upload and first hit load what is lazily loaded (Lua scripts, codecs).
    upload(mw, sessions[0], "https://warm.example/warm.png", body_of(size, -1 & 0xFFFF))
    gc.collect()
    before, hwm_before = _status("VmRSS"), _status("VmHWM")
    for i in range(uploads):
        upload(mw, sessions[i % SESSIONS], f"https://site.example/assets/{i}.png", body_of(size, i))
    gc.collect()
    return {
        "accounted": mw.store.local.size, "entries": len(mw.store.local), "max_bytes": mw.store.local.max_bytes,
        "rss_before": before, "rss_after": _status("VmRSS"),
        "hwm_before": hwm_before, "hwm_after": _status("VmHWM"),
    }


if __name__ == "__main__":
    url, count, body_size, bound = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(main(url, count, body_size, bound)))
