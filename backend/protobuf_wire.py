"""Protocol Buffers' wire format, as much of it as the ONNX graphs voicegate builds from checkpoints need (the
watermark's, the voiceprint's): varints, and fields of an int or of bytes."""

from __future__ import annotations


def varint(value: int) -> bytes:
    """``value`` as a varint; a negative int64 as its two's complement, as protobuf writes it."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def int_field(field: int, value: int) -> bytes:
    """Field number ``field`` holding the int ``value`` (wire type 0)."""
    return varint(field << 3) + varint(value)


def bytes_field(field: int, value: bytes | str) -> bytes:
    """Field number ``field`` holding ``value`` (wire type 2; a str as UTF-8)."""
    data = value.encode() if isinstance(value, str) else value
    return varint(field << 3 | 2) + varint(len(data)) + data
