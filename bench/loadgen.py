"""A light HTTP/1.1 load generator (asyncio streams, keep-alive), so that the client's own cost does not
decide what a benchmark measures on a small machine.

- `closed_loop`: N connections, each sending its next request when the last answer arrives (throughput).
- `open_loop`: requests at a fixed rate spread over N connections; latency counts from when a request was
  due, not when a connection was free (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

RequestFactory = Callable[[], bytes]


@dataclass
class Result:
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def percentile(self, q: float) -> float:
        values = sorted(self.latencies_ms)
        return values[min(len(values) - 1, int(q / 100 * len(values)))] if values else float("nan")


def request_bytes(method: str, url: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Connection:
    def __init__(self, url: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.url, self.reader, self.writer = url, reader, writer

    @classmethod
    async def open(cls, url: str) -> _Connection:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(url, reader, writer)

    async def exchange(self, request: bytes) -> int:
        """Send one request and read its answer; a connection the server closed is reopened once."""
        try:
            return await self._exchange(request)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.writer.close()
            parts = urlsplit(self.url)
            self.reader, self.writer = await asyncio.open_connection(parts.hostname, parts.port)
            return await self._exchange(request)

    async def _exchange(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def closed_loop(url: str, make: RequestFactory, clients: int, seconds: float) -> Result:
    connections = [await _Connection.open(url) for _ in range(clients)]
    result = Result(seconds)
    deadline = time.perf_counter() + seconds

    async def run(connection: _Connection) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status = await connection.exchange(make())
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.errors += status >= 400

    await asyncio.gather(*(run(c) for c in connections))
    for connection in connections:
        connection.close()
    return result


async def open_loop(url: str, make: RequestFactory, rate: float, connections: int, seconds: float) -> Result:
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    opened = [await _Connection.open(url) for _ in range(connections)]
    for connection in opened:
        pool.put_nowait(connection)
    result = Result(seconds)
    start = time.perf_counter()
    total = int(rate * seconds)

    async def one(due: float) -> None:
        connection = await pool.get()
        try:
            status = await connection.exchange(make())
        finally:
            pool.put_nowait(connection)
        result.latencies_ms.append((time.perf_counter() - due) * 1000)
        result.errors += status >= 400

    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - start
    for connection in opened:
        connection.close()
    return result
