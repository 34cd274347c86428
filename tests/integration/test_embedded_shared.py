"""The embedded level 2 is shared by separate OS processes on one machine, as gunicorn workers are.

Other processes are real interpreters (``python -c``) importing the package, or a forked child
that inherits an already-open store, as a gunicorn worker inherits the app loaded in its master.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from middleware.store.base import ResourceMeta
from middleware.store.embedded import EmbeddedLevel2

REPO = Path(__file__).resolve().parents[2]
LONG = 600.0
WRITERS, WRITES = 4, 40


def run_python(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter that imports this checkout; return its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def body_for(writer: int, i: int) -> bytes:
    """Deterministic bodies of varied sizes; every fifth is the same for all writers, so that
    processes race to store one blob."""
    seed = f"shared-{i}" if i % 5 == 0 else f"{writer}-{i}"
    chunk = hashlib.sha256(seed.encode()).digest()
    return chunk * (1 + (i * 37) % 400)


WRITER = """
    import hashlib, sys
    from middleware.store.base import ResourceMeta
    from middleware.store.embedded import EmbeddedLevel2
    sys.path.insert(0, sys.argv[3])
    from test_embedded_shared import body_for

    path, writer = sys.argv[1], int(sys.argv[2])
    store = EmbeddedLevel2(path, max_bytes=int(sys.argv[4]), timeout=5.0)
    for i in range(int(sys.argv[5])):
        body = body_for(writer, i)
        meta = ResourceMeta(hashlib.sha256(body).hexdigest(), len(body), "text/css")
        store.put_resource(f"s{writer}", f"https://site.example/{i}.css", meta, body, 600)
"""


def write_concurrently(path: Path, max_bytes: int) -> None:
    """WRITERS processes, started together, each storing WRITES resources in its own session."""
    # A generous busy timeout: this is about integrity under contention, not about latency.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), str(path), str(writer),
             str(Path(__file__).parent), str(max_bytes), str(WRITES)],
            cwd=REPO, stderr=subprocess.PIPE, text=True,
        )
        for writer in range(WRITERS)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr


def test_a_write_in_another_process_is_read_here(tmp_path: Path) -> None:
    path = tmp_path / "level2"
    run_python(
        """
        import sys
        from middleware.store.base import ResourceMeta
        from middleware.store.embedded import EmbeddedLevel2
        store = EmbeddedLevel2(sys.argv[1], max_bytes=2**20)
        meta = ResourceMeta("ab" * 32, 5, "image/png")
        store.put_resource("s1", "https://site.example/a.png", meta, b"\\x00png\\x00", 600)
        store.create_session("s1", {"page": "p"}, "123456789", 600)
        """,
        str(path),
    )

    store = EmbeddedLevel2(str(path), max_bytes=2**20)

    assert store.get_resource("s1", "https://site.example/a.png", LONG) == (
        ResourceMeta("ab" * 32, 5, "image/png"), b"\x00png\x00")
    assert store.session_for_code("123456789") == "s1"


def test_a_write_here_is_read_in_another_process(tmp_path: Path) -> None:
    path = tmp_path / "level2"
    store = EmbeddedLevel2(str(path), max_bytes=2**20)
    body = os.urandom(100_000)
    meta = ResourceMeta(hashlib.sha256(body).hexdigest(), len(body), "image/png")
    store.put_resource("s1", "https://site.example/a.png", meta, body, LONG)
    store.end_session("s2", LONG)

    out = run_python(
        """
        import hashlib, sys
        from middleware.store.embedded import EmbeddedLevel2
        store = EmbeddedLevel2(sys.argv[1], max_bytes=2**20)
        meta, body = store.get_resource("s1", "https://site.example/a.png", 600)
        print(meta.sha256, hashlib.sha256(body).hexdigest(), store.get_session("s2", 600))
        """,
        str(path),
    )

    digest = hashlib.sha256(body).hexdigest()
    assert out.split(" ", 2) == [digest, digest, "{'ended': '1'}\n"]


def _forked_child(store: EmbeddedLevel2) -> None:
    inherited = store._local.db  # the parent's connection, copied by fork
    store.put_resource("child", "https://site.example/c.css",
                       ResourceMeta("cd" * 32, 3, "text/css"), b"c{}", LONG)
    # Sharing a SQLite connection across fork can corrupt the database without any error, so
    # check directly that the child opened its own.
    sys.exit(0 if store._local.db is not inherited else 3)


def test_a_forked_child_gets_its_own_connection(tmp_path: Path) -> None:
    store = EmbeddedLevel2(str(tmp_path / "level2"), max_bytes=2**20)
    store.ping()  # the parent's connection is open before the fork, as in a gunicorn master
    child = multiprocessing.get_context("fork").Process(target=_forked_child, args=(store,))
    child.start()
    child.join(60)

    assert child.exitcode == 0
    assert store.get_resource("child", "https://site.example/c.css", LONG)[1] == b"c{}"


def test_concurrent_writers_never_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "level2"
    write_concurrently(path, max_bytes=64 * 2**20)

    store = EmbeddedLevel2(str(path), max_bytes=64 * 2**20)
    for writer in range(WRITERS):
        resources = store.list_resources(f"s{writer}")
        assert len(resources) == WRITES
        for i in range(WRITES):
            url = f"https://site.example/{i}.css"
            meta, body = store.get_resource(f"s{writer}", url, LONG)
            assert body == body_for(writer, i)
            assert hashlib.sha256(body).hexdigest() == meta.sha256 == resources[url].sha256


def test_concurrent_writers_with_eviction_stay_bounded_and_intact(tmp_path: Path) -> None:
    path, max_bytes = tmp_path / "level2", 200_000  # a fraction of what the writers store
    write_concurrently(path, max_bytes=max_bytes)

    store = EmbeddedLevel2(str(path), max_bytes=max_bytes)
    found = 0
    for writer in range(WRITERS):
        for i in range(WRITES):
            hit = store.get_resource(f"s{writer}", f"https://site.example/{i}.css", LONG)
            if hit is not None:
                found += 1
                assert hashlib.sha256(hit[1]).hexdigest() == hit[0].sha256
    assert 0 < found < WRITERS * WRITES
    assert store.stored_bytes() <= max_bytes
