"""Where deliveries may go (SSRF): https only (plain http to loopback), and in production only to public
addresses, checked on every address a name resolves to, with the connection made to the address that
was checked; redirects are answers, never followed."""

from __future__ import annotations

import ipaddress
import json
import time

import httpx
import pytest
from standardwebhooks import Webhook

from backend.errors import WebhookUrlRefused
from backend.secret import Secret
from backend.standard_webhooks.sender import Resolver, Target, WebhookSender, parse_url, public_address, refusal
from backend.standard_webhooks.signing import new_secret

BODY = b'{"type":"voice.ready","timestamp":"2026-11-23T10:00:00.000000Z","data":{}}'


def resolver_of(*addresses: str) -> tuple[list[tuple[str, int]], Resolver]:
    """A resolver answering `addresses` for any name, and the list of what it was asked."""
    asked: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        if not addresses:
            raise OSError("Name or service not known")
        return list(addresses)

    return asked, resolve


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/voicegate", "https://hooks.example.com:8443/x?token=t", "http://127.0.0.1:9000/hook"],
)
def test_https_urls_and_http_to_loopback_are_accepted(url: str) -> None:
    assert parse_url(url).hostname


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/x", "must use https"),
        ("ftp://hooks.example.com/x", "https URL with a host"),
        ("https:///nohost", "https URL with a host"),
        ("https://user:pw@hooks.example.com/x", "must not carry credentials"),
        ("https://hooks.example.com/x#frag", "must not have a fragment"),
        ("https://hooks.example.com:99999/x", "cannot be parsed"),
        ("https://hooks.example.com/" + "x" * 2100, "longer than 2048"),
    ],
)
def test_other_urls_are_refused_saying_why(url: str, why: str) -> None:
    with pytest.raises(WebhookUrlRefused, match=why):
        parse_url(url)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT, not global
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address refused, not bound
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("ff02::1", "multicast"),
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    why = refusal(ipaddress.ip_address(address))
    assert why is not None
    assert reason in why


#: IPv6 addresses that reach an IPv4 one, and addresses Python calls global that are not: each with the
#: reason it is refused.
CARRIERS = [
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 (well-known prefix) of the cloud metadata address
    ("64:ff9b::7f00:1", "loopback"),
    ("64:ff9b::a00:1", "private"),
    ("64:ff9b:1::a00:1", "private"),  # NAT64's local-use prefix: a network's own translator ...
    ("64:ff9b:1::808:808", "private"),  # ... never global, whatever it carries
    ("2002:a9fe:a9fe::", "link-local"),  # 6to4
    ("2002:7f00:1::", "loopback"),
    ("2002:c0a8:101::1", "private"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "private"),  # Teredo: client 192.0.2.45 (documentation)
    ("2001:0:808:808::f5ff:fffe", "private"),  # Teredo: client 10.0.0.1, stored inverted
    ("2001:0:7f00:1::", "loopback"),  # Teredo: server 127.0.0.1
    ("::127.0.0.1", "loopback"),  # IPv4-compatible
    ("::a9fe:a9fe", "link-local"),
    ("::ffff:169.254.169.254", "link-local"),  # IPv4-mapped
    ("::ffff:0:7f00:1", "loopback"),  # IPv4-translated (SIIT)
    ("192.0.0.8", "private"),  # IETF protocol assignments, all of 192.0.0.0/24
    ("192.0.0.9", "private"),
    ("192.0.0.170", "private"),
]


@pytest.mark.parametrize(("address", "reason"), CARRIERS)
def test_an_address_is_refused_when_the_ipv4_it_carries_would_be(address: str, reason: str) -> None:
    why = refusal(ipaddress.ip_address(address))
    assert why is not None
    assert reason in why


@pytest.mark.parametrize(
    "address",
    ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(("address", "reason"), CARRIERS)
async def test_each_carrier_is_refused_when_an_endpoint_is_made(address: str, reason: str) -> None:
    asked, resolve = resolver_of(address)
    sender = WebhookSender(None, allow_private=False, resolver=resolve)
    literal = f"[{address}]" if ":" in address else address

    with pytest.raises(WebhookUrlRefused, match=reason):
        await sender.check(f"https://{literal}/hooks")
    assert asked == []  # a literal is checked as it is
    with pytest.raises(WebhookUrlRefused, match=reason):
        await sender.check("https://hooks.example.com/hooks")
    assert asked == [("hooks.example.com", 443)]
    await sender.aclose()


@pytest.mark.parametrize(("address", "reason"), CARRIERS)
async def test_each_carrier_is_refused_at_delivery_when_dns_turns_to_it(address: str, reason: str) -> None:
    seen: list[httpx.Request] = []
    answers = ["93.184.215.14"]

    async def resolve(host: str, port: int) -> list[str]:
        return list(answers)

    sender = WebhookSender(None, allow_private=False, resolver=resolve, transport=recording(204, seen))
    await sender.check("https://hooks.example.com/hooks")  # public when the endpoint was made
    answers[:] = [address]  # ... and no longer when the event is delivered

    with pytest.raises(WebhookUrlRefused, match=reason):
        await sender.post(Target("https://hooks.example.com/hooks", Secret(new_secret())), "msg_1", BODY, 0)
    await sender.aclose()

    assert seen == []


async def test_every_resolved_address_must_be_public() -> None:
    _, resolve = resolver_of("93.184.215.14", "10.0.0.7")
    with pytest.raises(WebhookUrlRefused, match="private or reserved"):
        await public_address("rebind.example.com", 443, resolve)


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    _, resolve = resolver_of()
    with pytest.raises(WebhookUrlRefused, match="does not resolve"):
        await public_address("nowhere.invalid", 443, resolve)


async def test_an_address_literal_is_checked_without_asking_dns() -> None:
    asked, resolve = resolver_of("93.184.215.14")
    with pytest.raises(WebhookUrlRefused, match="link-local"):
        await public_address("169.254.169.254", 80, resolve)
    assert asked == []


def recording(status: int, seen: list[httpx.Request]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, headers={"location": "http://169.254.169.254/"} if status == 302 else {})

    return httpx.MockTransport(answer)


async def test_production_connects_to_the_checked_address_with_the_hosts_name_for_tls() -> None:
    seen: list[httpx.Request] = []
    asked, resolve = resolver_of("93.184.215.14")
    secret = new_secret()
    sender = WebhookSender(None, allow_private=False, resolver=resolve, transport=recording(204, seen))
    target = Target("https://hooks.example.com:8443/in?x=1", Secret(secret))
    now = int(time.time())

    status = await sender.post(target, "msg_1", BODY, now)
    await sender.aclose()

    assert status == 204
    assert asked == [("hooks.example.com", 8443)]
    (request,) = seen
    assert str(request.url) == "https://93.184.215.14:8443/in?x=1"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.content == BODY
    assert json.loads(request.content) == Webhook(secret).verify(request.content, dict(request.headers))


async def test_production_sends_nothing_to_a_name_that_now_resolves_privately() -> None:
    seen: list[httpx.Request] = []
    _, resolve = resolver_of("192.168.0.10")
    sender = WebhookSender(None, allow_private=False, resolver=resolve, transport=recording(200, seen))

    with pytest.raises(WebhookUrlRefused, match="private"):
        await sender.post(Target("https://hooks.example.com/", Secret(new_secret())), "msg_1", BODY, 0)
    await sender.aclose()

    assert seen == []


async def test_a_redirect_is_an_answer_not_followed() -> None:
    seen: list[httpx.Request] = []
    _, resolve = resolver_of("93.184.215.14")
    sender = WebhookSender(None, allow_private=False, resolver=resolve, transport=recording(302, seen))

    status = await sender.post(Target("https://hooks.example.com/", Secret(new_secret())), "msg_1", BODY, 0)
    await sender.aclose()

    assert status == 302
    assert len(seen) == 1


async def test_embedded_mode_delivers_to_loopback_as_the_url_says() -> None:
    seen: list[httpx.Request] = []
    asked, resolve = resolver_of()
    sender = WebhookSender(None, allow_private=True, resolver=resolve, transport=recording(200, seen))

    await sender.check("http://127.0.0.1:9000/hook")
    status = await sender.post(Target("http://127.0.0.1:9000/hook", Secret(new_secret())), "msg_1", BODY, 0)
    await sender.aclose()

    assert status == 200
    assert str(seen[0].url) == "http://127.0.0.1:9000/hook"
    assert asked == []


async def test_production_refuses_a_private_endpoint_when_it_is_made() -> None:
    _, resolve = resolver_of("10.0.0.7")
    sender = WebhookSender(None, allow_private=False, resolver=resolve)

    with pytest.raises(WebhookUrlRefused, match="public addresses only"):
        await sender.check("https://internal.example.com/hook")
    with pytest.raises(WebhookUrlRefused, match="loopback"):
        await sender.check("http://127.0.0.1:9000/hook")
    await sender.aclose()


async def test_the_operators_own_endpoint_may_be_internal() -> None:
    seen: list[httpx.Request] = []
    asked, resolve = resolver_of("10.0.0.7")
    sender = WebhookSender(None, allow_private=False, resolver=resolve, transport=recording(204, seen))
    project = Target("https://hooks.internal.example/voicegate", Secret(new_secret()), trusted=True)

    assert await sender.post(project, "msg_1", BODY, 0) == 204
    await sender.aclose()

    assert str(seen[0].url) == "https://hooks.internal.example/voicegate"
    assert asked == []
