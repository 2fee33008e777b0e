"""The connections of `qism serve`: what one client may hold, and for how long.

uvicorn closes a keep-alive connection idle between requests, but not one that sends nothing, half a
header or a body a byte at a time: a thousand of those from one client denied everyone else. Here every
connection has a deadline for its request's headers and one for its body, a client holds a bounded number
of connections (a new one closes that client's oldest connection still waiting for a request), an early
answer (413) is followed by a bounded drain of the rest of the body so ordinary clients read it, and a
stopping server closes the connections still sending a request instead of waiting for them.
"""

from __future__ import annotations

import socket
from typing import ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .errors import QismError

#: Seconds from a connection's opening (or its previous answer) to the end of its next request's headers.
HEADER_SECONDS = 10.0
#: Seconds from the end of a request's headers to the end of its body (2 MB at 1 Mbit/s takes 17).
BODY_SECONDS = 30.0
#: Seconds a keep-alive connection may stay idle after an answer (uvicorn's own timer closes it).
IDLE_SECONDS = 5
#: Connections one client address holds at once in one worker; past it its oldest waiting one is closed.
MAX_CONNECTIONS_PER_CLIENT = 100
#: Connections one worker holds at once; past it the oldest waiting one, whoever's, is closed (below
#: uvicorn's limit_concurrency, past which it would answer every request 503).
MAX_OPEN_CONNECTIONS = 900
#: Bytes of a refused body read and thrown away after the answer, so the client gets to read it (nginx's
#: lingering close); past it, or past BODY_SECONDS, the connection is closed.
MAX_DRAINED_BYTES = 64 * 2**20

WAITING, RECEIVING, ANSWERING, CLOSED = "waiting for a request", "receiving a request", "answering", "closed"


class LingeringTransport:
    """A connection's transport whose `close`, while the client is still sending its request's body (an
    early 413 to a client that said `Connection: close`), only shuts the writing side and reads on: closing
    with unread bytes would reset the connection before the client reads the answer. The reading is
    bounded by the body's deadline and MAX_DRAINED_BYTES."""

    def __init__(self, transport, protocol: GuardedHTTPProtocol):
        self.transport, self.protocol, self.lingering = transport, protocol, False

    def __getattr__(self, name):
        return getattr(self.transport, name)

    def close(self) -> None:
        if self.protocol.phase != RECEIVING or self.lingering or self.transport.is_closing():
            return self.transport.close()
        self.lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.transport.resume_reading()

    def is_closing(self) -> bool:
        return self.lingering or self.transport.is_closing()

    def close_now(self) -> None:
        self.transport.close()


class GuardedHTTPProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with deadlines, a per-client cap, a bounded drain and Nagle's algorithm off.

    Nagle off: with `--workers`, uvicorn binds the listening socket itself and asyncio leaves Nagle's
    algorithm on for the connections it accepts (uvicorn issue 3149): every answer on a keep-alive
    connection would wait about 40 ms for the client's delayed ACK.
    """

    header_seconds: ClassVar[float] = HEADER_SECONDS
    body_seconds: ClassVar[float] = BODY_SECONDS
    #: Per worker process: each client address's open connections, oldest first, and all of them.
    by_client: ClassVar[dict[str, list[GuardedHTTPProtocol]]] = {}
    opened: ClassVar[dict[GuardedHTTPProtocol, None]] = {}

    def connection_made(self, transport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(LingeringTransport(transport, self))
        self.phase, self.deadline, self.drained = None, None, 0
        self.address = self.client[0] if self.client else ""
        siblings = self.by_client.setdefault(self.address, [])
        if len(siblings) >= MAX_CONNECTIONS_PER_CLIENT:
            self.close_the_oldest_waiting(siblings)
        if len(self.opened) >= MAX_OPEN_CONNECTIONS:
            self.close_the_oldest_waiting(self.opened)
        siblings.append(self)
        self.opened[self] = None
        self.follow_the_request()

    def close_the_oldest_waiting(self, connections) -> None:
        """Make room: close the oldest of `connections` not being answered, else this new one."""
        (next((other for other in connections if other.phase in (WAITING, RECEIVING)), self)).close()

    def connection_lost(self, exc) -> None:
        self.set_deadline(None)
        self.opened.pop(self, None)
        siblings = self.by_client.get(self.address, [])
        if self in siblings:
            siblings.remove(self)
            if not siblings:
                del self.by_client[self.address]
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.phase == RECEIVING and self.cycle is not None and self.cycle.response_complete:
            self.drained += len(data)
            if self.drained > MAX_DRAINED_BYTES:
                return self.close()
            if self.transport.lingering:
                return
        super().data_received(data)
        self.follow_the_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.follow_the_request()

    def shutdown(self) -> None:
        """A stopping server closes a connection still sending its request: the client may send it again."""
        if self.phase == RECEIVING:
            self.close()
        else:
            super().shutdown()

    def follow_the_request(self) -> None:
        """Arm the deadline of the request's current part: headers, body, or none while it is answered."""
        if self.transport.lingering:
            return  # the body's deadline still runs
        state = self.conn.their_state
        if self.transport.is_closing():
            phase = CLOSED
        elif state is h11.IDLE and self.conn.our_state is h11.IDLE:
            phase = WAITING
        elif state is h11.SEND_BODY:
            phase = RECEIVING
        else:
            phase = ANSWERING
        if phase != self.phase:
            self.phase = phase
            self.set_deadline({WAITING: self.header_seconds, RECEIVING: self.body_seconds}.get(phase))

    def set_deadline(self, seconds: float | None) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline = None if seconds is None else self.loop.call_later(seconds, self.close)

    def close(self) -> None:
        self.phase = CLOSED
        self.set_deadline(None)
        self.transport.close_now()


def set_timeouts(header_seconds: float, body_seconds: float) -> None:
    """The deadlines of this process's connections (`--header-timeout`, `--body-timeout`)."""
    if not (0 < header_seconds <= 3600 and 0 < body_seconds <= 3600):
        raise QismError("--header-timeout and --body-timeout take seconds in (0, 3600]")
    GuardedHTTPProtocol.header_seconds, GuardedHTTPProtocol.body_seconds = header_seconds, body_seconds
