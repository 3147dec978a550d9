"""The gateway's HTTP/1.1 client to Serve's proxy: keep-alive reuse, chunked bodies, a closed idle
connection retried once, timeouts and an unreachable proxy."""

from __future__ import annotations

import asyncio

import pytest

from dljobs.controller.ray_head import free_port
from dljobs.controller.services.serve_http import ServeHTTP, ServeTransportError


async def serve(port: int, answers: list[bytes], close_after: int | None = None):  # type: ignore[no-untyped-def]
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        handled = 0
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = int(
                next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1]
            )
            await reader.readexactly(length)
            writer.write(answers.pop(0))
            await writer.drain()
            handled += 1
            if close_after is not None and handled >= close_after:
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    return server, lambda: connections


def test_keep_alive_chunked_and_a_closed_idle_connection() -> None:
    async def run() -> None:
        port = free_port()
        answers = [
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nagain",
        ]
        server, connections = await serve(port, answers, close_after=2)
        client = ServeHTTP(f"http://127.0.0.1:{port}")
        assert await client.post("/a", b"{}", 5) == (200, b"ok")
        assert await client.post("/a", b"{}", 5) == (503, b"busy")
        assert connections() == 1  # the second request reused the first connection
        # the server closed that connection after two answers: the next request goes out on a new one
        assert await client.post("/a", b"{}", 5) == (200, b"again")
        assert connections() == 2
        await client.close()
        server.close()

    asyncio.run(run())


def test_a_silent_server_times_out_and_a_missing_one_is_unreachable() -> None:
    async def run() -> None:
        port = free_port()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(5)

        server = await asyncio.start_server(silent, "127.0.0.1", port)
        with pytest.raises(TimeoutError):
            await ServeHTTP(f"http://127.0.0.1:{port}").post("/a", b"{}", 0.2)
        server.close()
        with pytest.raises(ServeTransportError):
            await ServeHTTP(f"http://127.0.0.1:{free_port()}").post("/a", b"{}", 2)

    asyncio.run(run())
