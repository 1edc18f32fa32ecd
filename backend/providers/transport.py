"""The providers' httpx client sends through aiohttp: httpx's API above, aiohttp's connections and parser below.

httpx's own transport (httpcore, h11 and anyio, all Python) cost a streamed request about three times the event
loop's CPU that aiohttp's (its HTTP parser is C) costs for the same request, and a speech stream reads its provider's
answer in some fifty chunks: on a server opening twenty streams at once that CPU is time each of them waits for its
first byte. The adapters keep httpx's requests and responses (and tests keep `httpx.MockTransport`); this transport
carries them, mapping each timeout httpx names onto aiohttp's and each aiohttp failure onto the httpx error that
means the same, so the callers' classification (`backend.providers.http`: sent or not, answered or not) holds.
"""

from __future__ import annotations

import asyncio
import io
import select
import ssl
import weakref
from collections.abc import AsyncIterator
from typing import Any, Final

import aiohttp
import httpx
import yarl

#: Headers aiohttp writes itself from the body it sends; httpx's values would be written twice.
_BODY_HEADERS: Final = frozenset({"content-length", "transfer-encoding"})
#: Headers aiohttp would add that httpx leaves out (a raw body's type): a request carries httpx's headers alone.
_OWN_HEADERS: Final = ("User-Agent", "Content-Type")
#: How long an idle pooled connection is kept, as httpx keeps one.
_KEEP_ALIVE_S: Final = 5.0
#: The longest answer head line and header, and the most headers, an answer may have: httpx's own transport (h11)
#: reads a head of up to 100 KB; aiohttp's defaults (8,190 bytes, 128 headers) would lose answers it reads.
_HEAD_BYTES: Final = 100 * 1024
_HEADERS: Final = 1000
#: A request body over this is sent from a buffer in pieces: aiohttp warns of (and would write at once) larger bytes.
_WHOLE_BODY_BYTES: Final = 1 << 20


class _CheckedConnector(aiohttp.TCPConnector):
    """aiohttp's pool, which drops a pooled connection whose socket is readable before reusing it (as httpcore
    does): the provider closed it while the event loop was busy and the close is in the kernel, unread. Reused, the
    next request would fail as sent (a create's outcome unknown, a synthesis charged twice) though it never left.
    `_get` is aiohttp's own (private): pyproject.toml pins aiohttp's minor version and
    tests/unit/providers/test_transport_faults.py checks the behaviour."""

    async def _get(self, key: Any, traces: Any) -> Any:
        for protocol, _ in list(self._conns.get(key, ())):
            transport = protocol.transport
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is not None and _readable(sock):
                protocol.close()  # no longer connected: aiohttp's `_get` discards it
        return await super()._get(key, traces)


def _readable(sock: Any) -> bool:
    """Whether a pooled socket has something to read (the peer's close, or stray bytes): poll, as httpcore does
    (select refuses a descriptor of 1,024 or more); a socket that cannot be polled counts as readable (dropped)."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp session, made on first use in the running loop and closed with the
    client. It follows no redirect, reads no proxy variable or .netrc, and leaves the answer's body encoded
    (httpx decodes it, as over its own transport)."""

    def __init__(self, *, verify: ssl.SSLContext, connections: int) -> None:
        self._verify = verify
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        #: Answers whose bodies may still be read: closing the client fails them (aiohttp's close leaves them waiting).
        self._bodies: weakref.WeakSet[aiohttp.ClientResponse] = weakref.WeakSet()

    def _opened(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = _CheckedConnector(
                limit=self._connections, limit_per_host=0, ssl=self._verify, keepalive_timeout=_KEEP_ALIVE_S
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                trust_env=False,
                skip_auto_headers=_OWN_HEADERS,
                cookie_jar=aiohttp.DummyCookieJar(),  # httpx's client keeps the cookies, as it does over its own
                max_line_size=_HEAD_BYTES,
                max_field_size=_HEAD_BYTES,
                max_headers=_HEADERS,
            )
            # aiohttp resends an idempotent request itself once its connection drops; ProviderHttp decides resends.
            self._session._retry_connection = False  # no public switch (aiohttp 3.14)
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; the answer's head is read, its body left to stream."""
        timeouts = request.extensions.get("timeout", {})
        connect, read, write, pool = (timeouts.get(name) for name in ("connect", "read", "write", "pool"))
        timeout = aiohttp.ClientTimeout(
            total=None,
            # aiohttp's `connect` spans the wait for a pooled connection and the connection's making.
            connect=None if connect is None or pool is None else max(connect, pool),
            sock_connect=connect,
            sock_read=read,
        )
        # aiohttp has no write timeout: the request's sending and the answer's head get httpx's write and read
        # timeouts added, after as long as a connection may take (which aiohttp's own `connect` bounds, as not sent).
        head = None if None in (write, read, connect, pool) else max(connect, pool) + write + read
        body = await request.aread()
        headers = [(name, value) for name, value in request.headers.multi_items() if name.lower() not in _BODY_HEADERS]
        session = self._opened()
        try:
            async with asyncio.timeout(head):
                response = await session.request(
                    request.method,
                    yarl.URL(str(request.url), encoded=True),  # as httpx quoted it, not requoted
                    headers=headers,
                    data=(body if len(body) <= _WHOLE_BODY_BYTES else io.BytesIO(body)) or None,
                    allow_redirects=False,
                    timeout=timeout,
                )
        except TimeoutError as exc:
            if isinstance(exc, aiohttp.ConnectionTimeoutError):
                raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
            raise httpx.ReadTimeout(str(exc) or "no answer in time", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            if session.closed and str(exc).startswith("Connector is closed"):
                # The client closed while the connection was being made: nothing was sent. (aiohttp raises its plain
                # ClientConnectionError for a body it failed to write too: the message tells them apart.)
                raise httpx.ConnectError("the client closed before the request left", request=request) from exc
            raise _lost(exc, request) from exc
        except ValueError as exc:  # a header aiohttp will not write (a line break in a value): nothing left
            raise httpx.LocalProtocolError(str(exc), request=request) from exc
        except asyncio.CancelledError:
            if (task := asyncio.current_task()) is not None and task.cancelling():
                raise
            # The session closed under a request still waiting for a pooled connection (aiohttp cancels those
            # waits): it never left. One under way when the session closed fails as a lost connection instead.
            raise httpx.PoolTimeout("the client closed before a connection was free", request=request) from None
        self._bodies.add(response)
        try:
            reason = (response.reason or "").encode("latin-1", errors="replace")
            return httpx.Response(
                response.status,
                headers=response.raw_headers,
                stream=_Body(response, request),
                request=request,
                extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
            )
        except BaseException:
            response.release()
            raise

    async def aclose(self) -> None:
        """Close the session and its connections; requests and bodies still under way fail as lost."""
        if self._session is None:
            return
        session, self._session = self._session, None
        lost = aiohttp.ClientConnectionError("the client closed")
        for response in list(self._bodies):
            if not response.content.is_eof():
                response.content.set_exception(lost)
            response.close()
        # aiohttp closes a connection in use gracefully, which waits for ever on an upload its peer stopped reading:
        # abort them (its set of connections in use is private, 3.14).
        connector = session.connector
        for protocol in list(connector._acquired if connector is not None else ()):
            protocol.abort()
        await session.close()


class _Body(httpx.AsyncByteStream):
    """An answer's body as it arrives."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "the answer stalled", request=self._request) from exc
        except aiohttp.ClientError as exc:
            raise _lost(exc, self._request) from exc
        except RuntimeError as exc:  # read after the session closed ("Connection closed.")
            raise httpx.ReadError(str(exc), request=self._request) from exc

    async def aclose(self) -> None:
        # aiohttp pools the connection of a body read to its end and closes one left before it.
        self._response.release()


def _lost(exc: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    """The httpx error for a request sent (or partly sent) whose answer did not come whole."""
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(str(exc), request=request)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(str(exc), request=request)
    return httpx.ReadError(str(exc) or type(exc).__name__, request=request)
