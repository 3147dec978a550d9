"""A small keep-alive HTTP/1.1 client for the gateway's one hop to Ray Serve's proxy.

httpx costs a millisecond or more of CPU per request under concurrency (measured with py-spy on the predict
path: most of the controller's time went to its transport); this pool of asyncio streams sends a request and
reads its answer with a few syscalls. It speaks only what Serve's proxy answers: Content-Length or chunked
bodies, keep-alive unless told to close. Predictions are pure, so a request on a reused connection that the
server had closed is sent once more on a fresh one.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class ServeTransportError(Exception):
    """The proxy could not be reached, or the connection broke."""


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        self.writer.close()


class ServeHTTP:
    def __init__(self, base_url: str, max_idle: int = 128) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.netloc = parts.netloc
        self.max_idle = max_idle
        self._idle: list[_Conn] = []

    async def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    async def post(self, path: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        """(status, body); TimeoutError past `timeout`, ServeTransportError when the proxy is unreachable."""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        return await asyncio.wait_for(self._exchange(head + body), timeout)

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._open()
            try:
                conn.writer.write(request)
                status, body, keep = await self._read(conn.reader)
            except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
                conn.close()
                if reused and attempt == 0:
                    continue  # the server closed an idle connection: once more on a fresh one
                raise ServeTransportError(type(exc).__name__) from None
            except BaseException:
                conn.close()  # a timeout or a cancellation leaves the answer unread: never reuse it
                raise
            if keep and len(self._idle) < self.max_idle:
                self._idle.append(conn)
            else:
                conn.close()
            return status, body
        raise ServeTransportError("the connection broke")

    async def _open(self) -> _Conn:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise ServeTransportError(type(exc).__name__) from None
        return _Conn(reader, writer)

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length: int | None = None
        chunked, keep = False, True
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                keep = False
        if chunked:
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            return status, b"".join(parts), keep
        if length is None:
            return status, await reader.read(), False
        return status, await reader.readexactly(length) if length else b"", keep
