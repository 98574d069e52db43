"""The scoring service on a loopback port, in a background thread: for the demo, which
drives the real API from the same process, and for tests and benchmarks that need a live
HTTP service. Production runs ``fedrisk serve``."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .service import ServingState

__all__ = ["serve_on_loopback"]


@contextlib.contextmanager
def serve_on_loopback(state: ServingState, *, start_timeout_s: float = 60.0) -> Iterator[str]:
    """Serve ``state``'s API on a free port of 127.0.0.1 (lifespan on, so webhooks are
    delivered) until the block ends; yields the base URL."""
    import uvicorn

    from .app import create_app

    config = uvicorn.Config(
        create_app(state), host="127.0.0.1", port=0, log_level="error", lifespan="on",
        access_log=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fedrisk-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the scoring service did not start on 127.0.0.1 (see its log)")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
