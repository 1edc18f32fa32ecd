"""Which addresses a webhook may be delivered to in production, decided from the IANA registries as data.

Python's `is_global` is not the rule: 3.11's tables predate RFC 9637 (3fff::/20) and RFC 9602 (5f00::/16),
never had the deprecated site-local fec0::/10 or 6to4 relay anycast 192.88.99.0/24, and call the anycast
service blocks global. `BLOCKS` below is the one table; the most specific block holding an address decides.
Its rows were transcribed in 2026-11 (the newest then: 100:0:0:1::/64, RFC 9780) from:

- IPv4 Special-Purpose Address Registry: https://www.iana.org/assignments/iana-ipv4-special-registry/
- IPv6 Special-Purpose Address Registry: https://www.iana.org/assignments/iana-ipv6-special-registry/
- IPv4 Address Space Registry (224.0.0.0/4 multicast): https://www.iana.org/assignments/ipv4-address-space/
- IPv6 Address Space Registry (2000::/3 global unicast, fec0::/10, ff00::/8):
  https://www.iana.org/assignments/ipv6-address-space/

A row whose "Globally Reachable" is False or N/A is refused (but for IPv4-mapped, below). Some the
registry calls globally reachable are refused too, each saying why: anycast service addresses (PCP, TURN,
DNS-SD SRP, AMT, AS112), whose nearest instance may be one run inside the network voicegate runs in, and
where no webhook receiver is; and identifier blocks (ORCHIDv2, DETs), which are not locators: a host
reaches one only through its own HIP layer, to a peer it alone chooses. IPv6 outside 2000::/3 is refused
but for two forms that are an IPv4 destination in IPv6 clothes, judged by the IPv4 address they carry:
IPv4-mapped (a dual-stack socket sends it over IPv4) and NAT64's well-known prefix (how every IPv4 host
appears on a DNS64 network). The other carriers (IPv4-compatible, 6to4, Teredo, NAT64's local-use
prefix) are refused outright: each is deprecated or reaches its IPv4 host through a relay or translator
that may be on voicegate's own network.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Use(enum.Enum):
    """What a delivery to an address in a block does."""

    DELIVER = "deliver"
    REFUSE = "refuse"
    #: The block's last 32 bits are an IPv4 address, which decides.
    CARRIED = "carried"


@dataclass(frozen=True)
class Block:
    """One registry row: its block, name and RFC, the registry's "Globally Reachable" (None: N/A, or a
    registry without that column), and what voicegate does with it (`why`: the reason, where that is
    stricter than the registry)."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    name: str
    rfc: str
    globally_reachable: bool | None
    use: Use
    why: str = ""


def _row(
    network: str, name: str, rfc: str, globally_reachable: bool | None, *, use: Use = Use.REFUSE, why: str = ""
) -> Block:
    return Block(ipaddress.ip_network(network), name, rfc, globally_reachable, use, why)


_ANYCAST = "an anycast service address: its nearest instance may be inside voicegate's own network"
_IDENTIFIER = "an identifier, not a locator: only the host's own HIP layer knows where it leads"

BLOCKS: Final[tuple[Block, ...]] = (
    # IPv4 Address Space Registry: all unicast (allocated to an RIR, or legacy) but multicast; 240.0.0.0/4
    # is in the special-purpose registry below.
    _row("0.0.0.0/0", "unicast", "RFC 791", True, use=Use.DELIVER),
    _row("224.0.0.0/4", "multicast", "RFC 5771", None),
    # IPv4 Special-Purpose Address Registry, every row.
    _row("0.0.0.0/8", '"this network"', "RFC 791 §3.2", False),
    _row("0.0.0.0/32", '"this host on this network"', "RFC 1122 §3.2.1.3", False),
    _row("10.0.0.0/8", "private-use", "RFC 1918", False),
    _row("100.64.0.0/10", "shared address space, carrier-grade NAT", "RFC 6598", False),
    _row("127.0.0.0/8", "loopback", "RFC 1122 §3.2.1.3", False),
    _row("169.254.0.0/16", "link-local", "RFC 3927", False),
    _row("172.16.0.0/12", "private-use", "RFC 1918", False),
    _row("192.0.0.0/24", "IETF protocol assignments", "RFC 6890 §2.1", False),
    _row("192.0.0.0/29", "IPv4 service continuity prefix", "RFC 7335", False),
    _row("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", False),
    _row("192.0.0.9/32", "Port Control Protocol anycast", "RFC 7723", True, why=_ANYCAST),
    _row("192.0.0.10/32", "Traversal Using Relays around NAT anycast", "RFC 8155", True, why=_ANYCAST),
    _row("192.0.0.170/32", "NAT64/DNS64 discovery", "RFC 8880, RFC 7050 §2.2", False),
    _row("192.0.0.171/32", "NAT64/DNS64 discovery", "RFC 8880, RFC 7050 §2.2", False),
    _row("192.0.2.0/24", "documentation, TEST-NET-1", "RFC 5737", False),
    _row("192.31.196.0/24", "AS112-v4", "RFC 7535", True, why=_ANYCAST),
    _row("192.52.193.0/24", "AMT", "RFC 7450", True, why=_ANYCAST),
    _row("192.88.99.0/24", "deprecated 6to4 relay anycast", "RFC 7526", None),
    _row("192.88.99.2/32", "6a44-relay anycast address", "RFC 6751", False),
    _row("192.168.0.0/16", "private-use", "RFC 1918", False),
    _row("192.175.48.0/24", "direct delegation AS112 service", "RFC 7534", True, why=_ANYCAST),
    _row("198.18.0.0/15", "benchmarking", "RFC 2544", False),
    _row("198.51.100.0/24", "documentation, TEST-NET-2", "RFC 5737", False),
    _row("203.0.113.0/24", "documentation, TEST-NET-3", "RFC 5737", False),
    _row("240.0.0.0/4", "reserved", "RFC 1112 §4", False),
    _row("255.255.255.255/32", "limited broadcast", "RFC 8190, RFC 919 §7", False),
    # IPv6 Address Space Registry, every row: only 2000::/3 is global unicast. Its fc00::/7 and fe80::/10
    # rows are the special-purpose registry's too, and are listed there.
    _row("::/8", "reserved by the IETF", "RFC 4291", None),
    _row("100::/8", "reserved by the IETF", "RFC 4291", None),
    _row("200::/7", "reserved by the IETF, formerly OSI NSAP-mapped", "RFC 4048", None),
    _row("400::/6", "reserved by the IETF", "RFC 4291", None),
    _row("800::/5", "reserved by the IETF", "RFC 4291", None),
    _row("1000::/4", "reserved by the IETF", "RFC 4291", None),
    _row("2000::/3", "global unicast", "RFC 4291 §2.4", True, use=Use.DELIVER),
    _row("4000::/3", "reserved by the IETF", "RFC 4291", None),
    _row("6000::/3", "reserved by the IETF", "RFC 4291", None),
    _row("8000::/3", "reserved by the IETF", "RFC 4291", None),
    _row("a000::/3", "reserved by the IETF", "RFC 4291", None),
    _row("c000::/3", "reserved by the IETF", "RFC 4291", None),
    _row("e000::/4", "reserved by the IETF", "RFC 4291", None),
    _row("f000::/5", "reserved by the IETF", "RFC 4291", None),
    _row("f800::/6", "reserved by the IETF", "RFC 4291", None),
    _row("fe00::/9", "reserved by the IETF", "RFC 4291", None),
    _row("fec0::/10", "deprecated site-local", "RFC 3879", None),
    _row("ff00::/8", "multicast", "RFC 4291 §2.7", None),
    # Not a registry row: the deprecated IPv4-compatible form, named so that a refusal says what it is.
    _row("::/96", "deprecated IPv4-compatible", "RFC 4291 §2.5.5.1", None),
    # IPv6 Special-Purpose Address Registry, every row.
    _row("::1/128", "loopback", "RFC 4291", False),
    _row("::/128", "unspecified", "RFC 4291", False),
    _row("::ffff:0:0/96", "IPv4-mapped", "RFC 4291", False, use=Use.CARRIED, why="an IPv4 destination, sent over IPv4"),
    _row("64:ff9b::/96", "IPv4-IPv6 translation, NAT64", "RFC 6052", True, use=Use.CARRIED),
    _row("64:ff9b:1::/48", "IPv4-IPv6 translation, local-use NAT64", "RFC 8215", False),
    _row("100::/64", "discard-only", "RFC 6666", False),
    _row("100:0:0:1::/64", "dummy IPv6 prefix", "RFC 9780", False),
    _row("2001::/23", "IETF protocol assignments", "RFC 2928", False),
    _row("2001::/32", "Teredo", "RFC 4380, RFC 8190", None),
    _row("2001:1::1/128", "Port Control Protocol anycast", "RFC 7723", True, why=_ANYCAST),
    _row("2001:1::2/128", "Traversal Using Relays around NAT anycast", "RFC 8155", True, why=_ANYCAST),
    _row("2001:1::3/128", "DNS-SD service registration protocol anycast", "RFC 9665", True, why=_ANYCAST),
    _row("2001:2::/48", "benchmarking", "RFC 5180", False),
    _row("2001:3::/32", "AMT", "RFC 7450", True, why=_ANYCAST),
    _row("2001:4:112::/48", "AS112-v6", "RFC 7535", True, why=_ANYCAST),
    _row("2001:10::/28", "deprecated ORCHID", "RFC 4843", None),
    _row("2001:20::/28", "ORCHIDv2", "RFC 7343", True, why=_IDENTIFIER),
    _row("2001:30::/28", "drone remote ID protocol entity tags, DETs", "RFC 9374", True, why=_IDENTIFIER),
    _row("2001:db8::/32", "documentation", "RFC 3849", False),
    _row("2002::/16", "6to4", "RFC 3056", None),
    _row("2620:4f:8000::/48", "direct delegation AS112 service", "RFC 7534", True, why=_ANYCAST),
    _row("3fff::/20", "documentation", "RFC 9637", False),
    _row("5f00::/16", "segment routing SRv6 SIDs", "RFC 9602", False),
    _row("fc00::/7", "unique-local", "RFC 4193, RFC 8190", False),
    _row("fe80::/10", "link-local unicast", "RFC 4291", False),
)

#: Per IP version, the most specific block first, so the first that holds an address decides.
_BY_VERSION: Final = {
    version: sorted((b for b in BLOCKS if b.network.version == version), key=lambda b: -b.network.prefixlen)
    for version in (4, 6)
}


def block_of(address: IPAddress) -> Block:
    """The row that decides `address`: the most specific block holding it."""
    return next(block for block in _BY_VERSION[address.version] if address in block.network)


def describe(block: Block) -> str:
    """A block as a refusal names it: what it is, which block, and the RFC."""
    return f"{block.name} ({block.network}, {block.rfc})"


def refusal(address: IPAddress) -> str | None:
    """Why a delivery may not go to `address` in production (its block, named), or None when it may."""
    block = block_of(address)
    if block.use is Use.CARRIED:
        carried = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        reason = refusal(carried)
        return None if reason is None else f"{reason}, carried in {describe(block)}"
    return describe(block) if block.use is Use.REFUSE else None
