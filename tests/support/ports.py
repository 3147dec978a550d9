"""Ports for servers that a test stops and starts again on the same port (a database, an S3 server, a Ray
head): taken below the kernel's ephemeral range, so that while the server is down no outgoing connection
on the machine can be given its port as a local port, which would keep the server from binding it again.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000


def _first_ephemeral() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def restartable_port() -> int:
    """A port free now and outside the ephemeral range (random, so parallel tests rarely meet)."""
    highest = _first_ephemeral() - 1
    if highest <= _LOWEST:
        raise RuntimeError(f"the ephemeral port range starts at {highest + 1}: no room below it")
    for _ in range(200):
        port = random.randint(_LOWEST, highest)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {_LOWEST} and {highest}")
