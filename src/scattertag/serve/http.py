"""uvicorn's HTTP protocol with each response's writes sent together (one ``send`` a response).

uvicorn writes a response's status line and headers as soon as the application starts the
response, and its body in a second write: two system calls, and two wake-ups of the client,
each a hand-off between the service and the client on the same cores. Here the writes of one
event-loop step are joined and sent at the end of the step (``loop.call_soon``): a response
of ``JSONResponse`` leaves in one ``send``. Streams (server-sent events) still go out as
they are written, a step later.
"""

from __future__ import annotations

import asyncio


class JoinedWrites:
    """A transport whose ``write`` calls within one event-loop step reach the socket as one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        """Queue ``data``; the queue is sent at the end of this event-loop step."""
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        """Send what is queued now, in one write."""
        if self._pending:
            data, self._pending = b"".join(self._pending), []
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        """Send what is queued, then close."""
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


def http_protocol() -> type[asyncio.Protocol] | str:
    """uvicorn's ``http`` setting: its httptools protocol writing through
    :class:`JoinedWrites`, or "auto" (uvicorn's choice) where httptools is not installed."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "auto"

    class JoinedWritesProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.transport = JoinedWrites(transport, self.loop)  # type: ignore[assignment]

    return JoinedWritesProtocol
