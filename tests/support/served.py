"""The controller app served over real HTTP (uvicorn in a thread), for clients that are processes of
their own: the CLI, a browser."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# A safeguard against a hang, not a performance check.
START_LIMIT = 120.0


@contextmanager
def served(settings: Any) -> Iterator[str]:
    """Serve `create_app(settings)` on a free local port (written into `settings.server`, so the jobs it
    launches report back to it); yields its base URL, stops it on exit."""
    import uvicorn

    from dljobs.controller.app import create_app
    from dljobs.controller.ray_head import free_port

    port = free_port()
    settings.server.host, settings.server.port = "127.0.0.1", port
    config = uvicorn.Config(
        create_app(settings, migrate=False),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="served-controller", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_LIMIT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the controller did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
