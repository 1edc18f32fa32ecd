"""The API socket `voicegate up` and `serve` bind before anything starts."""

from __future__ import annotations

import asyncio
import socket

import msgspec
import pytest

from backend.settings import settings_from_env
from standins.postgres import free_port
from voicegate.cli import banner_address
from voicegate.errors import CommandError
from voicegate.serving import api_listener


async def test_connections_accepted_on_it_send_without_delay() -> None:
    # Without TCP_NODELAY a response's last segment waits for the client's delayed ACK: 40 ms a request.
    settings = msgspec.structs.replace(settings_from_env({}), port=free_port())
    nodelay: list[int] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nodelay.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accept, sock=api_listener(settings))
    async with server:
        reader, writer = await asyncio.open_connection(settings.host, settings.port)
        assert await reader.read() == b""  # the server closed it, so `accept` has run
        writer.close()
    assert nodelay == [1]


def test_a_port_in_use_is_a_one_line_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings = msgspec.structs.replace(settings_from_env({}), port=port)
        with pytest.raises(CommandError, match=f"cannot listen on 127.0.0.1:{port}: Address already in use"):
            api_listener(settings)


def test_api_processes_share_a_port_only_when_each_asks_to() -> None:
    shared = msgspec.structs.replace(settings_from_env({"VOICEGATE_REUSE_PORT": "true"}), port=free_port())
    with api_listener(shared) as first, api_listener(shared) as second:
        first.listen()
        second.listen()
        assert first.getsockname() == second.getsockname()
        alone = msgspec.structs.replace(shared, reuse_port=False)
        with pytest.raises(CommandError, match="Address already in use"):
            api_listener(alone)


WILDCARD = "0.0.0.0"  # noqa: S104 - an address the settings hold, never bound here


def test_the_banner_names_the_public_address_or_loopback_never_a_wildcard() -> None:
    assert banner_address(settings_from_env({}, host=WILDCARD, port=8000)) == "http://127.0.0.1:8000"
    assert banner_address(settings_from_env({}, host="::", port=8001)) == "http://127.0.0.1:8001"
    assert banner_address(settings_from_env({}, host="10.0.0.5", port=8000)) == "http://10.0.0.5:8000"
    public = settings_from_env({"VOICEGATE_PUBLIC_URL": "https://voice.example.com/"}, host=WILDCARD, port=8000)
    assert banner_address(public) == "https://voice.example.com"
