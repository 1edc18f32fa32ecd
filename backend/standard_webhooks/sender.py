"""Posting a signed event to an endpoint without becoming a way into voicegate's own network (SSRF).

Outside embedded mode a user's webhook URL may name only public addresses: its host is resolved, and every
address it resolves to must be one the IANA registries call global unicast (`backend.standard_webhooks.
addresses` holds the table and its exceptions). The project's own endpoint
(VOICEGATE_WEBHOOK_URL) is the operator's configuration and may be internal. The check runs when an
endpoint is created and again before every delivery, and the delivery connects to the very address that was checked (the
URL's host stays in the Host header and in TLS's SNI, and the certificate is verified for it), so a DNS
answer that changes between check and connect reaches nothing new. Redirects are never followed (a
3xx is a failed delivery), timeouts are bounded, the response body is never read, and a connection is
never reused for another delivery.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from backend.errors import WebhookUrlRefused
from backend.secret import Secret, is_loopback_host
from backend.standard_webhooks.addresses import IPAddress, refusal
from backend.standard_webhooks.signing import secret_key, signed_headers
from backend.tls import verifying_context

Resolver = Callable[[str, int], Awaitable[list[str]]]

#: The spec recommends 15 to 30 s for a receiver to answer; connecting gets less.
TIMEOUT: Final = httpx.Timeout(15.0, connect=5.0)
#: The whole delivery, DNS included, is cut off after this long.
DELIVERY_DEADLINE_S: Final = 20.0
RESOLVE_TIMEOUT_S: Final = 5.0
MAX_URL_LENGTH: Final = 2048
#: Longest DNS name, written with dots between its labels (RFC 1035 §2.3.4).
MAX_HOST_NAME: Final = 253
_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


@dataclass(frozen=True)
class Destination:
    """Where one delivery goes: the URL, and its signing secret (held redacted). `trusted`: the operator
    configured it, so it may be a private address (a user's endpoint never is)."""

    url: str
    secret: Secret
    trusted: bool = False


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, through the system's resolver."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def parse_url(url: str) -> SplitResult:
    """The parts of an endpoint URL: https, or http to a loopback host; a host; no credentials or fragment.

    Raises WebhookUrlRefused saying what is wrong.
    """
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlRefused(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlRefused("The URL cannot be parsed.") from exc
    host = parts.hostname or ""
    if parts.scheme not in {"http", "https"} or not host:
        raise WebhookUrlRefused("The URL must be an https URL with a host.")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise WebhookUrlRefused("The URL must use https (plain http is allowed only to a loopback address).")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlRefused("The URL must not carry credentials; deliveries are signed instead.")
    if parts.fragment:
        raise WebhookUrlRefused("The URL must not have a fragment.")
    if port == 0:
        raise WebhookUrlRefused("The URL's port must be between 1 and 65535.")
    _check_host_name(host)
    return parts


def _check_host_name(host: str) -> None:
    """Refuse a host that is neither an IP address nor a name DNS could be asked for: dot-separated labels of 1 to
    63 letters, digits, hyphens (or underscores), at most 253 characters in all once a name in another script is
    written in IDNA's ASCII form (`xn--`)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return
    try:
        ascii_name = host.encode("idna").decode("ascii")
    except UnicodeError:
        # Python's IDNA codec refuses an empty or over-long label, and text that maps to nothing (U+200B).
        raise WebhookUrlRefused(
            "The URL's host is not a valid host name (an empty label, a label over 63 characters, or characters"
            " no host name may hold)."
        ) from None
    name = ascii_name.removesuffix(".")
    if len(name) > MAX_HOST_NAME:
        raise WebhookUrlRefused(f"The URL's host name is longer than {MAX_HOST_NAME} characters.")
    if not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise WebhookUrlRefused(
            "The URL's host is not a valid host name: each dot-separated label must be 1 to 63 letters, digits"
            " or hyphens, not starting or ending with a hyphen."
        )


async def public_address(host: str, port: int, resolver: Resolver) -> IPAddress:
    """The first address `host` resolves to, after checking that every one of them is public.

    Raises WebhookUrlRefused when the host does not resolve or any address is not public (a name that
    answers with one public and one private address could be steered to the private one).
    """
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                found = await resolver(host, port)
        except (OSError, TimeoutError) as exc:
            raise WebhookUrlRefused(f"The URL's host {host} does not resolve.") from exc
        addresses = [ipaddress.ip_address(item.split("%", 1)[0]) for item in found]
        if not addresses:
            raise WebhookUrlRefused(f"The URL's host {host} does not resolve.")
    for address in addresses:
        reason = refusal(address)
        if reason is not None:
            verb = "is" if literal is not None else "resolves to"
            raise WebhookUrlRefused(f"The URL's host {host} {verb} {reason}; webhooks go to public addresses only.")
    return addresses[0]


class WebhookSender:
    """Signs and posts deliveries; holds the project's endpoint (VOICEGATE_WEBHOOK_URL) if there is one.

    `allow_private` (embedded mode) lets deliveries reach loopback and private addresses, for receivers on
    the developer's own machine; production refuses them.
    """

    def __init__(
        self,
        project: Destination | None,
        *,
        allow_private: bool,
        resolver: Resolver = system_resolver,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.project = project
        self.allow_private = allow_private
        self._resolver = resolver
        # No keep-alive: each delivery gets its own connection, to the address checked for it.
        self._client = httpx.AsyncClient(
            timeout=TIMEOUT,
            follow_redirects=False,
            trust_env=False,
            verify=verifying_context(),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=0),
            transport=transport,
        )

    async def check(self, url: str) -> None:
        """Refuse (WebhookUrlRefused) a URL deliveries could not go to from here."""
        parts = parse_url(url)
        if not self.allow_private:
            await public_address(parts.hostname or "", _port(parts), self._resolver)

    async def post(self, target: Destination, webhook_id: str, body: bytes, timestamp: int) -> int:
        """Deliver `body` signed for this attempt at `timestamp`; the receiver's status code.

        Raises WebhookUrlRefused when the URL may not be reached now, or httpx's errors (timeouts,
        refused connections, TLS failures).
        """
        async with asyncio.timeout(DELIVERY_DEADLINE_S):
            parts = parse_url(target.url)
            host = parts.hostname or ""
            headers = signed_headers(secret_key(target.secret.reveal()), webhook_id, timestamp, body)
            url: str = target.url
            extensions: dict[str, str] = {}
            if not (self.allow_private or target.trusted):
                address = await public_address(host, _port(parts), self._resolver)
                url = _with_address(parts, address)
                headers["host"] = parts.netloc.rpartition("@")[2]
                extensions = {"sni_hostname": host}
            request = self._client.build_request("POST", url, content=body, headers=headers, extensions=extensions)
            response = await self._client.send(request, stream=True)
            await response.aclose()
            return response.status_code

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _with_address(parts: SplitResult, address: IPAddress) -> str:
    host = f"[{address}]" if address.version == 6 else str(address)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
