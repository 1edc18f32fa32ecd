"""Where deliveries may go (SSRF): https only (plain http to loopback), and in production only to public
addresses, checked on every address a name resolves to, with the connection made to the address that
was checked; redirects are answers, never followed."""

from __future__ import annotations

import ipaddress
import json
import re
import time

import httpx
import pytest
from standardwebhooks import Webhook

from backend.errors import WebhookUrlRefused
from backend.secret import Secret
from backend.standard_webhooks.sender import Destination, Resolver, WebhookSender, parse_url, public_address, refusal
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


#: One row per block the IANA registries name (backend/standard_webhooks/addresses.py cites them): the block
#: as a refusal names it, an address inside it, and a neighbouring global address where one exists. The
#: first five of issue 45 were accepted while Python's `is_global` decided.
REFUSED = [
    pytest.param("fec0::/10", "fec0::1", None, id="site-local fec0::1 (issue 45)"),
    pytest.param("fec0::/10", "feff::1", None, id="site-local feff::1 (issue 45)"),
    pytest.param("3fff::/20", "3fff::1", "3fff:1000::1", id="documentation 3fff::/20 (issue 45)"),
    pytest.param("5f00::/16", "5f00::1", None, id="SRv6 5f00::/16 (issue 45)"),
    pytest.param("192.88.99.0/24", "192.88.99.1", "192.88.100.1", id="6to4 relay anycast (issue 45)"),
    # IPv4 Special-Purpose Address Registry
    pytest.param("0.0.0.0/8", "0.1.2.3", "1.0.0.1", id="this network"),
    pytest.param("0.0.0.0/32", "0.0.0.0", None, id="this host"),  # noqa: S104 - an address refused, not bound
    pytest.param("10.0.0.0/8", "10.1.2.3", "11.0.0.1", id="private-use 10/8"),
    pytest.param("100.64.0.0/10", "100.64.0.1", "100.128.0.1", id="shared address space"),
    pytest.param("127.0.0.0/8", "127.0.0.1", "128.0.0.1", id="loopback"),
    pytest.param("169.254.0.0/16", "169.254.169.254", "169.255.0.1", id="link-local (cloud metadata)"),
    pytest.param("172.16.0.0/12", "172.16.0.1", "172.32.0.1", id="private-use 172.16/12"),
    pytest.param("192.0.0.0/24", "192.0.0.100", "192.0.1.1", id="IETF protocol assignments"),
    pytest.param("192.0.0.0/29", "192.0.0.1", None, id="IPv4 service continuity"),
    pytest.param("192.0.0.8/32", "192.0.0.8", None, id="IPv4 dummy address"),
    pytest.param("192.0.0.9/32", "192.0.0.9", None, id="PCP anycast v4"),
    pytest.param("192.0.0.10/32", "192.0.0.10", None, id="TURN anycast v4"),
    pytest.param("192.0.0.170/32", "192.0.0.170", None, id="NAT64 discovery .170"),
    pytest.param("192.0.0.171/32", "192.0.0.171", None, id="NAT64 discovery .171"),
    pytest.param("192.0.2.0/24", "192.0.2.45", "192.0.3.1", id="TEST-NET-1"),
    pytest.param("192.31.196.0/24", "192.31.196.1", "192.31.197.1", id="AS112-v4"),
    pytest.param("192.52.193.0/24", "192.52.193.1", "192.52.192.1", id="AMT v4"),
    pytest.param("192.88.99.2/32", "192.88.99.2", None, id="6a44 relay anycast"),
    pytest.param("192.168.0.0/16", "192.168.1.1", "192.169.0.1", id="private-use 192.168/16"),
    pytest.param("192.175.48.0/24", "192.175.48.6", "192.175.49.1", id="AS112 direct delegation v4"),
    pytest.param("198.18.0.0/15", "198.19.255.1", "198.20.0.1", id="benchmarking v4"),
    pytest.param("198.51.100.0/24", "198.51.100.7", "198.51.101.1", id="TEST-NET-2"),
    pytest.param("203.0.113.0/24", "203.0.113.9", "203.0.114.1", id="TEST-NET-3"),
    pytest.param("240.0.0.0/4", "240.0.0.1", None, id="reserved 240/4"),  # below it is multicast
    pytest.param("255.255.255.255/32", "255.255.255.255", None, id="limited broadcast"),
    # IPv4 Address Space Registry
    pytest.param("224.0.0.0/4", "224.0.0.1", "223.255.255.1", id="multicast v4"),
    # IPv6 Special-Purpose Address Registry
    pytest.param("::1/128", "::1", None, id="loopback v6"),
    pytest.param("::/128", "::", None, id="unspecified v6"),
    pytest.param("64:ff9b:1::/48", "64:ff9b:1::808:808", None, id="local-use NAT64, even of a public address"),
    pytest.param("100::/64", "100::1", None, id="discard-only"),
    pytest.param("100:0:0:1::/64", "100:0:0:1::1", None, id="dummy IPv6 prefix"),
    pytest.param("2001::/23", "2001:5::1", "2001:200::1", id="IETF protocol assignments v6"),
    pytest.param("2001::/32", "2001:0:4136:e378:8000:63bf:3fff:fdd2", None, id="Teredo"),
    pytest.param("2001::/32", "2001:0:808:808::f5ff:fffe", None, id="Teredo, client 10.0.0.1"),
    pytest.param("2001:1::1/128", "2001:1::1", None, id="PCP anycast v6"),
    pytest.param("2001:1::2/128", "2001:1::2", None, id="TURN anycast v6"),
    pytest.param("2001:1::3/128", "2001:1::3", None, id="DNS-SD SRP anycast"),
    pytest.param("2001:2::/48", "2001:2::1", None, id="benchmarking v6"),
    pytest.param("2001:3::/32", "2001:3::1", None, id="AMT v6"),
    pytest.param("2001:4:112::/48", "2001:4:112::1", None, id="AS112-v6"),
    pytest.param("2001:10::/28", "2001:10::1", None, id="ORCHID, deprecated"),
    pytest.param("2001:20::/28", "2001:20::1", None, id="ORCHIDv2"),
    pytest.param("2001:30::/28", "2001:30::1", None, id="DETs"),
    pytest.param("2001:db8::/32", "2001:db8::1", "2001:db9::1", id="documentation 2001:db8::/32"),
    pytest.param("2002::/16", "2002:808:808::1", "2003::1", id="6to4, even of a public address"),
    pytest.param("2002::/16", "2002:a9fe:a9fe::", "2001:ffff::1", id="6to4 of the metadata address"),
    pytest.param("2620:4f:8000::/48", "2620:4f:8000::1", "2620:4f:8001::1", id="AS112 direct delegation v6"),
    pytest.param("3fff::/20", "3fff:fff:ffff::1", "3ffe:ffff::1", id="documentation 3fff::/20, its end"),
    pytest.param("fc00::/7", "fd00::1", None, id="unique-local"),
    pytest.param("fe80::/10", "fe80::1", None, id="link-local v6"),
    # IPv6 Address Space Registry: outside 2000::/3, and the deprecated IPv4-compatible form
    pytest.param("ff00::/8", "ff02::1", None, id="multicast v6"),
    pytest.param("::/96", "::808:808", None, id="IPv4-compatible, even of a public address"),
    pytest.param("::/96", "::127.0.0.1", None, id="IPv4-compatible of loopback"),
    pytest.param("::/8", "::ffff:0:808:808", None, id="SIIT IPv4-translated"),
    pytest.param("100::/8", "1ff::1", None, id="reserved 100::/8"),
    pytest.param("200::/7", "200::1", None, id="reserved 200::/7"),
    pytest.param("400::/6", "400::1", None, id="reserved 400::/6"),
    pytest.param("800::/5", "800::1", None, id="reserved 800::/5"),
    pytest.param("1000::/4", "1fff:ffff::1", "2000::1", id="reserved 1000::/4"),
    pytest.param("4000::/3", "4000::1", "3fff:ffff::1", id="reserved 4000::/3"),
    pytest.param("6000::/3", "6000::1", None, id="reserved 6000::/3"),
    pytest.param("8000::/3", "8000::1", None, id="reserved 8000::/3"),
    pytest.param("a000::/3", "a000::1", None, id="reserved a000::/3"),
    pytest.param("c000::/3", "c000::1", None, id="reserved c000::/3"),
    pytest.param("e000::/4", "e000::1", None, id="reserved e000::/4"),
    pytest.param("f000::/5", "f000::1", None, id="reserved f000::/5"),
    pytest.param("f800::/6", "f800::1", None, id="reserved f800::/6"),
    pytest.param("fe00::/9", "fe00::1", None, id="reserved fe00::/9"),
    # IPv4 inside IPv6: IPv4-mapped and NAT64 are the IPv4 address they carry
    pytest.param("10.0.0.0/8", "::ffff:10.0.0.1", "::ffff:11.0.0.1", id="IPv4-mapped private"),
    pytest.param("127.0.0.0/8", "::ffff:127.0.0.1", None, id="IPv4-mapped loopback"),
    pytest.param("169.254.0.0/16", "::ffff:169.254.169.254", None, id="IPv4-mapped metadata"),
    pytest.param("192.88.99.0/24", "::ffff:192.88.99.1", None, id="IPv4-mapped 6to4 relay anycast"),
    pytest.param("169.254.0.0/16", "64:ff9b::a9fe:a9fe", "64:ff9b::808:808", id="NAT64 of the metadata address"),
    pytest.param("127.0.0.0/8", "64:ff9b::7f00:1", None, id="NAT64 of loopback"),
    pytest.param("192.0.0.0/24", "64:ff9b::c000:64", None, id="NAT64 of an IETF protocol assignment"),
]
WITH_NEIGHBOUR = [row for row in REFUSED if row.values[2] is not None]


def literal_url(address: str) -> str:
    return f"https://[{address}]/hooks" if ":" in address else f"https://{address}/hooks"


@pytest.mark.parametrize(("block", "inside", "neighbour"), REFUSED)
def test_an_address_in_each_block_is_refused_naming_the_block(block: str, inside: str, neighbour: str | None) -> None:
    why = refusal(ipaddress.ip_address(inside))
    assert why is not None
    assert f"({block}, RFC" in why


@pytest.mark.parametrize(("block", "inside", "neighbour"), WITH_NEIGHBOUR)
def test_the_global_neighbour_of_each_refused_block_is_allowed(block: str, inside: str, neighbour: str) -> None:
    assert refusal(ipaddress.ip_address(neighbour)) is None


@pytest.mark.parametrize(("block", "inside", "neighbour"), REFUSED)
async def test_each_block_is_refused_when_an_endpoint_is_made(block: str, inside: str, neighbour: str | None) -> None:
    asked, resolve = resolver_of(inside)
    sender = WebhookSender(None, allow_private=False, resolver=resolve)

    with pytest.raises(WebhookUrlRefused, match=f"is .*\\({re.escape(block)}, RFC"):
        await sender.check(literal_url(inside))
    assert asked == []  # a literal is checked as it is
    with pytest.raises(WebhookUrlRefused, match=f"hooks.example.com resolves to .*\\({re.escape(block)}, RFC"):
        await sender.check("https://hooks.example.com/hooks")
    assert asked == [("hooks.example.com", 443)]
    await sender.aclose()


@pytest.mark.parametrize(("block", "inside", "neighbour"), REFUSED)
async def test_each_block_is_refused_at_delivery_when_dns_turns_to_it(
    block: str, inside: str, neighbour: str | None
) -> None:
    seen: list[httpx.Request] = []
    answers = ["93.184.215.14"]

    async def resolve(host: str, port: int) -> list[str]:
        return list(answers)

    sender = WebhookSender(None, allow_private=False, resolver=resolve, transport=recording(204, seen))
    await sender.check("https://hooks.example.com/hooks")  # public when the endpoint was made
    answers[:] = ["2606:4700:4700::1111", inside]  # ... and, among others, not when the event is delivered

    with pytest.raises(WebhookUrlRefused, match=re.escape(f"({block}, RFC")):
        await sender.post(Destination("https://hooks.example.com/hooks", Secret(new_secret())), "msg_1", BODY, 0)
    await sender.aclose()

    assert seen == []


@pytest.mark.parametrize(("block", "inside", "neighbour"), WITH_NEIGHBOUR)
async def test_a_name_resolving_to_each_global_neighbour_is_delivered_to_that_address(
    block: str, inside: str, neighbour: str
) -> None:
    seen: list[httpx.Request] = []
    _, resolve = resolver_of(neighbour)
    sender = WebhookSender(None, allow_private=False, resolver=resolve, transport=recording(204, seen))

    await sender.check(literal_url(neighbour))
    await sender.check("https://hooks.example.com/hooks")
    status = await sender.post(Destination("https://hooks.example.com/hooks", Secret(new_secret())), "msg_1", BODY, 0)
    await sender.aclose()

    assert status == 204
    (request,) = seen
    assert ipaddress.ip_address(request.url.host) == ipaddress.ip_address(neighbour)  # the address checked
    assert request.headers["host"] == "hooks.example.com"


@pytest.mark.parametrize(
    "address",
    ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001::1", "64:ff9b::808:808", "::ffff:8.8.8.8"],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


async def test_every_resolved_address_must_be_public() -> None:
    _, resolve = resolver_of("93.184.215.14", "10.0.0.7")
    with pytest.raises(WebhookUrlRefused, match=re.escape("resolves to private-use (10.0.0.0/8, RFC 1918)")):
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
    target = Destination("https://hooks.example.com:8443/in?x=1", Secret(secret))
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
        await sender.post(Destination("https://hooks.example.com/", Secret(new_secret())), "msg_1", BODY, 0)
    await sender.aclose()

    assert seen == []


async def test_a_redirect_is_an_answer_not_followed() -> None:
    seen: list[httpx.Request] = []
    _, resolve = resolver_of("93.184.215.14")
    sender = WebhookSender(None, allow_private=False, resolver=resolve, transport=recording(302, seen))

    status = await sender.post(Destination("https://hooks.example.com/", Secret(new_secret())), "msg_1", BODY, 0)
    await sender.aclose()

    assert status == 302
    assert len(seen) == 1


async def test_embedded_mode_delivers_to_loopback_as_the_url_says() -> None:
    seen: list[httpx.Request] = []
    asked, resolve = resolver_of()
    sender = WebhookSender(None, allow_private=True, resolver=resolve, transport=recording(200, seen))

    await sender.check("http://127.0.0.1:9000/hook")
    status = await sender.post(Destination("http://127.0.0.1:9000/hook", Secret(new_secret())), "msg_1", BODY, 0)
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
    project = Destination("https://hooks.internal.example/voicegate", Secret(new_secret()), trusted=True)

    assert await sender.post(project, "msg_1", BODY, 0) == 204
    await sender.aclose()

    assert str(seen[0].url) == "https://hooks.internal.example/voicegate"
    assert asked == []
