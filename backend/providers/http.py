"""Shared httpx plumbing: explicit timeouts, classified errors, bounded retries with jitter."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import httpx
import msgspec

from backend.providers.base import SendMeter
from backend.providers.errors import (
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    UnknownOutcomeError,
)
from backend.providers.slots import NoSlot, ProviderSlots
from backend.providers.transport import AiohttpTransport
from backend.tls import verifying_context

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The most connections the shared client holds open, over every provider.
_CONNECTIONS: Final = 50
#: How long a request waits for a pooled connection, and for one of its provider's slots (`backend.providers.slots`).
POOL_WAIT_S = 5.0
_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=30.0, pool=POOL_WAIT_S)

# Statuses that mean "try again later"; 408 is a server-side request timeout, so nothing was done.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
BUSY_MESSAGE = "The voice provider is busy; try again later."

# Errors raised before the request left this process: safe to resend even for a create.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How often and how long to retry transient failures.

    ``max_retry_after`` caps how long a ``Retry-After`` may make us wait inline; a longer demand is
    surfaced to the caller as a transient error carrying ``retry_after`` so a queue can reschedule.
    """

    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 30.0
    deadline_s: float = 90.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff for the given 1-based attempt number."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        return rng.uniform(0.0, ceiling)


def create_http_client() -> httpx.AsyncClient:
    """The one AsyncClient the adapters share, over aiohttp (`backend.providers.transport`); redirects are refused so
    credentials never travel on, and the environment's proxy variables and .netrc are ignored: API keys go only
    where the settings say. Every connection, up to `_CONNECTIONS`, is kept for the next request (an idle one is
    closed after 5 s): a burst of streams that met the provider on fresh connections would otherwise have most of
    them open a new TCP (and TLS) connection in the next burst, on its first byte's path."""
    return httpx.AsyncClient(
        timeout=_TIMEOUT,
        follow_redirects=False,
        trust_env=False,
        transport=AiohttpTransport(verify=verifying_context(), connections=_CONNECTIONS),
    )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC).timestamp()
    return max(0.0, when.timestamp() - current)


def retry_after_from(response: httpx.Response) -> float | None:
    """The server's wait hint: ``retry-after-ms`` (ElevenLabs, Cartesia SDKs) or ``Retry-After``."""
    millis = response.headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    return parse_retry_after(response.headers.get("retry-after"))


def busy(
    provider: str, response: httpx.Response, fields: Mapping[str, Any], message: str = BUSY_MESSAGE
) -> TransientProviderError:
    """The error of a ``TRANSIENT_STATUSES`` answer, with the server's wait hint; ``fields``: its ``answer_fields``."""
    return TransientProviderError(provider, message, retry_after=retry_after_from(response), **fields)


def text_or_none(value: object) -> str | None:
    """A field of a decoded error body, when it is a string."""
    return value if isinstance(value, str) else None


def has_audio(response: httpx.Response) -> None:
    """A ``validate`` for synthesis: an empty 2xx body is no audio (retried like a malformed answer)."""
    if not response.content:
        raise ValueError("empty audio answer")


Classifier = Callable[[httpx.Response], ProviderError]


def _not_sent(meter: SendMeter | None) -> None:
    if meter is not None:
        meter.not_sent()


class ProviderHttp:
    """Sends requests for one provider and turns every failure into a classified ``ProviderError``.

    ``idempotent=False`` marks a create: an answer that may have been lost after the provider acted
    (read timeout, dropped connection, 5xx, unreadable 2xx body) raises ``UnknownOutcomeError`` at once
    instead of resending, so the adapter can look the voice up by its enrolment key first. Such a
    create waits up to ``create_timeout`` (when given) unless the call names its own.
    """

    def __init__(
        self,
        provider: str,
        client: httpx.AsyncClient,
        base_url: str,
        headers: Mapping[str, str],
        classify: Classifier,
        *,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        create_timeout: httpx.Timeout | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        slots: ProviderSlots | None = None,
    ) -> None:
        self.provider = provider
        self.client = client
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._classify = classify
        self.policy = policy or RetryPolicy()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._create_timeout = create_timeout
        self._sleep = sleep
        self._slots = slots

    async def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool = True,
        authenticated: bool = True,
        call_timeout: httpx.Timeout | None = None,
        validate: Callable[[httpx.Response], None] | None = None,
        meter: SendMeter | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with retries; ``path`` may be absolute (e.g. a provider's download URL).

        ``validate`` inspects a 2xx answer and raises ``ValueError`` when it is unusable (malformed
        body); that is retried like a transient failure, or is an unknown outcome for a create. A request that
        carries text to speak names its ``meter``, which is told of each send before it is made (and may stop it)
        and of each that never left this process.
        """
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        if call_timeout is None and not idempotent:
            call_timeout = self._create_timeout
        headers = dict(self._headers) if authenticated else {}
        headers.update(kwargs.pop("headers", {}))
        extra: dict[str, Any] = {"timeout": call_timeout} if call_timeout is not None else {}

        async def attempt() -> httpx.Response | ProviderError:
            if meter is not None:
                await meter.before_send()
            try:
                async with self._slot():
                    response = await self.client.request(method, url, headers=headers, **kwargs, **extra)
            except NoSlot as exc:
                _not_sent(meter)
                return TransientProviderError(self.provider, BUSY_MESSAGE, operator_detail=str(exc))
            except _NOT_SENT as exc:
                _not_sent(meter)
                return TransientProviderError(
                    self.provider, "The voice provider could not be reached.", operator_detail=repr(exc)
                )
            except httpx.TransportError as exc:
                # Sent, but the answer was lost (read timeout, connection dropped).
                if not idempotent:
                    return self.unknown_outcome(repr(exc))
                return TransientProviderError(
                    self.provider, "The voice provider did not answer in time.", operator_detail=repr(exc)
                )
            return self._judge(response, idempotent=idempotent, validate=validate)

        return await self._retrying(attempt, f"{method} {httpx.URL(url).path} failed")

    def _slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """One of the provider's slots (`backend.providers.slots`), waited for up to `POOL_WAIT_S`; nothing to wait
        for when the adapter was built without slots."""
        if self._slots is None:
            return contextlib.nullcontext()
        return self._slots.held(POOL_WAIT_S)

    @contextlib.asynccontextmanager
    async def streaming(
        self, method: str, path: str, *, meter: SendMeter | None = None, **kwargs: Any
    ) -> AsyncIterator[httpx.Response]:
        """Send a synthesis request whose answer streams; yields the 2xx response with its body unread.

        Failures before the answer starts are retried as ``request`` retries them (a synthesis creates
        nothing, so resending is safe), each send told to ``meter`` as ``request`` tells it; once the body flows,
        read it through ``body``. A stream takes none of the provider's slots (``backend.providers.slots``).
        Leaving the block closes the response, and with it the connection when the body was not read to its end,
        which is how the provider learns the listener went away.
        """
        headers = {**self._headers, **kwargs.pop("headers", {})}

        async def attempt() -> httpx.Response | ProviderError:
            request = self.client.build_request(method, f"{self.base_url}{path}", headers=headers, **kwargs)
            if meter is not None:
                await meter.before_send()
            try:
                response = await self.client.send(request, stream=True)
            except httpx.TransportError as exc:
                if isinstance(exc, _NOT_SENT):
                    _not_sent(meter)
                    reason = "The voice provider could not be reached."
                else:
                    reason = "The voice provider did not answer in time."
                return TransientProviderError(self.provider, reason, operator_detail=repr(exc))
            if response.is_success:
                return response
            try:
                await response.aread()
            except httpx.TransportError:
                pass  # the status alone classifies it
            finally:
                await response.aclose()
            return self._classify(response)

        response = await self._retrying(attempt, f"{method} {path} stream failed")
        try:
            yield response
        finally:
            await response.aclose()

    async def body(self, response: httpx.Response) -> AsyncGenerator[bytes, None]:
        """The streamed body's chunks as they arrive; a connection lost midway is a transient error."""
        try:
            async for chunk in response.aiter_bytes():
                if chunk:
                    yield chunk
        except httpx.TransportError as exc:
            raise TransientProviderError(
                self.provider, "The voice provider stopped sending audio.", operator_detail=repr(exc)
            ) from exc

    async def json(
        self, method: str, path: str, result_type: type[T], *, idempotent: bool = True, **kwargs: Any
    ) -> tuple[T, httpx.Response]:
        """Send and decode a JSON answer into ``result_type`` (a malformed body counts as a failure)."""
        decoded: list[T] = []

        def validate(response: httpx.Response) -> None:
            try:
                decoded.append(msgspec.json.decode(response.content, type=result_type))
            except msgspec.MsgspecError as exc:
                raise ValueError(f"malformed JSON answer: {exc}") from exc

        response = await self.request(method, path, idempotent=idempotent, validate=validate, **kwargs)
        return decoded[-1], response

    def _judge(
        self,
        response: httpx.Response,
        *,
        idempotent: bool,
        validate: Callable[[httpx.Response], None] | None,
    ) -> httpx.Response | ProviderError:
        """The response itself when usable, else the error it amounts to."""
        if not response.is_success:
            error = self._classify(response)
            if not idempotent and response.status_code >= 500 and isinstance(error, TransientProviderError):
                # The provider may have created the voice before failing.
                return self.unknown_outcome(error.operator_detail, response)
            return error
        if validate is None:
            return response
        try:
            validate(response)
        except ValueError as exc:
            if not idempotent:
                return self.unknown_outcome(str(exc), response)
            return TransientProviderError(
                self.provider,
                "The voice provider sent an unreadable answer.",
                http_status=response.status_code,
                operator_detail=str(exc),
            )
        return response

    def unknown_outcome(self, detail: str | None, response: httpx.Response | None = None) -> UnknownOutcomeError:
        """The error of a create whose answer was lost: the voice may or may not exist now."""
        return UnknownOutcomeError(
            self.provider,
            "The voice provider did not confirm whether the voice was created.",
            http_status=response.status_code if response is not None else None,
            operator_detail=detail,
        )

    async def _retrying(
        self, attempt: Callable[[], Awaitable[httpx.Response | ProviderError]], failed: str
    ) -> httpx.Response:
        """The first usable response of ``attempt``, repeated while its errors are worth retrying; else
        the last error is raised. ``failed`` names the request in the log."""
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            outcome = await attempt()
            if isinstance(outcome, httpx.Response):
                return outcome
            delay = self._delay_before_retry(outcome, attempts, started)
            if delay is None:
                raise outcome
            log.warning(
                "provider %s %s (attempt %d, %s); retrying in %.2fs",
                self.provider,
                failed,
                attempts,
                outcome.provider_code or outcome.http_status or type(outcome).__name__,
                delay,
            )
            await self._sleep(delay)

    def _delay_before_retry(self, error: ProviderError, attempt: int, started: float) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when the error must be raised."""
        if isinstance(error, PermanentProviderError | UnknownOutcomeError):
            return None
        if not isinstance(error, TransientProviderError) or attempt >= self.policy.max_attempts:
            return None
        if error.retry_after is not None:
            if error.retry_after > self.policy.max_retry_after_s:
                return None
            delay = error.retry_after
        else:
            delay = self.policy.backoff(attempt, self._rng)
        if time.monotonic() - started + delay > self.policy.deadline_s:
            return None
        return delay
