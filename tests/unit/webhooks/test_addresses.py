"""The table of blocks deliveries may and may not reach keeps to the IANA registries it cites: nothing a
registry calls not globally reachable is delivered to, each stricter decision says why, each block has a
row in the sender's table-driven test, and IPv6's rows cover its whole space with nothing left to chance."""

from __future__ import annotations

import ipaddress
import itertools

from backend.standard_webhooks.addresses import BLOCKS, Use
from tests.unit.webhooks.test_sender import REFUSED


def test_no_block_a_registry_calls_unreachable_is_delivered_to() -> None:
    delivered = {str(b.network) for b in BLOCKS if b.use is Use.DELIVER}
    carried = {str(b.network) for b in BLOCKS if b.use is Use.CARRIED}

    assert all(b.globally_reachable is True for b in BLOCKS if b.use is Use.DELIVER)
    assert delivered == {"0.0.0.0/0", "2000::/3"}
    # An IPv4-mapped address is the IPv4 one (the registry's False is for the IPv6 wire form).
    assert carried == {"::ffff:0:0/96", "64:ff9b::/96"}


def test_each_block_refused_though_its_registry_calls_it_reachable_says_why() -> None:
    stricter = [b for b in BLOCKS if b.use is Use.REFUSE and b.globally_reachable is True]

    assert {str(b.network) for b in stricter} >= {"2001:20::/28", "2001:30::/28", "192.0.0.9/32", "2001:3::/32"}
    assert all(b.why for b in stricter), [str(b.network) for b in stricter if not b.why]


def test_each_block_is_listed_once_with_an_rfc() -> None:
    networks = [b.network for b in BLOCKS]

    assert len(networks) == len(set(networks))
    assert all(b.rfc.startswith("RFC ") and b.name for b in BLOCKS)


def test_every_refused_block_has_a_row_in_the_senders_test() -> None:
    refused = {str(b.network) for b in BLOCKS if b.use is Use.REFUSE}
    tested = {str(row.values[0]) for row in REFUSED}

    assert refused == tested


def test_the_ipv6_address_space_rows_cover_the_whole_space_once() -> None:
    # The IPv6 Address Space Registry's rows are the blocks of /10 or wider; every other IPv6 block is a
    # special-purpose one inside them.
    ipv6 = [b.network for b in BLOCKS if isinstance(b.network, ipaddress.IPv6Network)]
    top = sorted((network for network in ipv6 if network.prefixlen <= 10), key=lambda n: int(n.network_address))

    assert sum(network.num_addresses for network in top) == 2**128
    assert all(not a.overlaps(b) for a, b in itertools.pairwise(top))
    assert all(any(network.subnet_of(t) for t in top) for network in ipv6)
