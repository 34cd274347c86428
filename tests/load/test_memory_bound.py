"""What one process keeps of the resources it served is bounded by ``local.max_bytes`` (SPEC 7, 9).

Level 1 counts its entries' bodies, headers and keys against ``local.max_bytes``; nothing else in
the process may keep a served body alive once level 1 has let it go, or memory grows with traffic
whatever the bound says. Measured with tracemalloc (every Python allocation, deterministic), in
process, over a real Redis: many distinct resources, each uploaded and read back, far more bytes
than level 1 may hold.
"""

from __future__ import annotations

import gc
import tracemalloc

from werkzeug.test import Client

from middleware import ResourceSyncMiddleware
from tests.integration.conftest import make_settings
from tests.support.servers import plain_app

LOCAL_MAX_BYTES = 2 * 1024 * 1024
BODY = 64 * 1024
RESOURCES = 800  # 50 MiB through a 2 MiB level 1
#: Level 1's bound, half again for what the allocator and the store's small indexes keep, and a
#: few MiB for the rest (per-URL metadata, session records, client buffers).
GROWTH_BOUND = LOCAL_MAX_BYTES * 1.5 + 4 * 1024 * 1024


def test_memory_kept_stays_within_the_level1_bound(redis_url, tmp_path):
    middleware = ResourceSyncMiddleware(plain_app, make_settings(tmp_path, redis_url),
                                        local_max_bytes=LOCAL_MAX_BYTES, max_size=BODY * 2,
                                        session_max_bytes=2**30)
    client = Client(middleware)
    sessions = [client.post("/_cobrowse/sessions").json for _ in range(4)]

    def upload_and_read(n: int) -> None:
        session = sessions[n % len(sessions)]
        url = f"https://site.example/m/{n}.png"
        body = b"\x89PNG\r\n\x1a\n" + n.to_bytes(4, "big") * ((BODY - 8) // 4)
        stored = client.post("/_cobrowse/resources", data=body, headers={
            "X-Cobrowse-Token": session["upload_token"], "X-Cobrowse-Url": url, "Content-Type": "image/png"})
        assert stored.status_code == 201
        for _ in range(2):
            got = client.get("/_cobrowse/resources", query_string={"url": url, "token": session["view_token"]})
            assert got.status_code == 200 and got.get_data() == body

    for n in range(50):  # warm up: imports, scripts, first allocations
        upload_and_read(RESOURCES + n)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(RESOURCES):
            upload_and_read(n)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert middleware.store.local.size <= LOCAL_MAX_BYTES
    assert growth <= GROWTH_BOUND, (
        f"{growth / 2**20:.1f} MiB kept after serving {RESOURCES * BODY / 2**20:.0f} MiB through a "
        f"{LOCAL_MAX_BYTES / 2**20:.0f} MiB level 1")
