"""The service's HTTP protocol: a response's writes reach the socket as one."""

from __future__ import annotations

import asyncio

import pytest

from scattertag.serve.http import JoinedWrites, http_protocol


class Recorder:
    """A transport that records its writes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str):
        return name


def test_writes_of_one_loop_step_leave_as_one_and_close_sends_what_is_left() -> None:
    async def run() -> Recorder:
        sent = Recorder()
        transport = JoinedWrites(sent, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"{}")
        assert sent.writes == []  # not before the step ends
        await asyncio.sleep(0)
        assert sent.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
        transport.write(b"next")
        transport.close()  # what is queued goes before the close
        assert transport.get_extra_info("peername") == "peername"  # the rest is the socket's
        return sent

    sent = asyncio.run(run())
    assert sent.writes[-1] == b"next" and sent.closed


def test_the_protocol_is_uvicorns_httptools_one_where_installed() -> None:
    impl = pytest.importorskip("uvicorn.protocols.http.httptools_impl")  # needs httptools
    protocol = http_protocol()
    assert isinstance(protocol, type) and issubclass(protocol, impl.HttpToolsProtocol)
