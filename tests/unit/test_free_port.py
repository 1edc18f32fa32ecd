"""`free_port`: a port chosen now and bound seconds later must not be one an outgoing connection can take."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from standins import postgres
from standins.postgres import BROWSER_BLOCKED_PORTS, FIRST_UNPRIVILEGED, LAST_PORT, ephemeral_range, free_port


def set_range(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> None:
    """Make `free_port` read `text` as the kernel's ephemeral range."""
    path = tmp_path / "ip_local_port_range"
    path.write_text(text)
    monkeypatch.setattr(postgres, "LOCAL_PORT_RANGE", path)


def test_ports_are_drawn_outside_the_ephemeral_range_and_can_be_bound() -> None:
    low, high = ephemeral_range()
    ports = [free_port() for _ in range(200)]
    assert all(FIRST_UNPRIVILEGED <= port < low or high < port <= LAST_PORT for port in ports), ports
    assert len(set(ports)) > 150, "drawn at random, not the same few ports"
    for port in ports[:20]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_a_browser_will_not_load_a_page_from_is_never_drawn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Below the range, only 1024-6999: 5060 and 5061 (SIP), 6000 (X11) and IRC's among them. A page test once drew
    # 5061 and Chromium answered net::ERR_UNSAFE_PORT.
    set_range(monkeypatch, tmp_path, "7000 65535\n")
    drawn = {free_port() for _ in range(3000)}

    assert {5060, 5061, 6000} <= BROWSER_BLOCKED_PORTS
    assert not drawn & BROWSER_BLOCKED_PORTS
    assert len(drawn) > 1500, "drawn at random from the whole stretch"


def test_a_port_something_listens_on_is_never_drawn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        held = holder.getsockname()[1]
        # Only `held` and the port after it lie outside the range (below it, too few to draw from).
        set_range(monkeypatch, tmp_path, f"{FIRST_UNPRIVILEGED + 1} {held - 1}\n")
        monkeypatch.setattr(postgres, "LAST_PORT", held + 1)
        monkeypatch.setattr(postgres, "FEWEST_TO_DRAW", 2)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", held + 1))  # free, or the test cannot tell anything
        assert {free_port() for _ in range(30)} == {held + 1}


def test_a_kernel_whose_every_port_is_ephemeral_leaves_the_choice_to_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    set_range(monkeypatch, tmp_path, f"{FIRST_UNPRIVILEGED} {LAST_PORT}\n")
    port = free_port()
    assert FIRST_UNPRIVILEGED <= port <= LAST_PORT
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_an_unreadable_range_is_taken_for_linuxs_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(postgres, "LOCAL_PORT_RANGE", tmp_path / "missing")
    assert ephemeral_range() == (32768, 60999)
    set_range(monkeypatch, tmp_path, "not a range\n")
    assert ephemeral_range() == (32768, 60999)
