"""A string wrapper that keeps keys and signing secrets out of reprs, logs and tracebacks."""

from __future__ import annotations

import hmac


class Secret:
    """A secret string that never shows itself in ``repr`` or ``str``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value, for the few places that sign or compare with it."""
        return self._value

    def matches(self, candidate: str) -> bool:
        """Constant-time equality with ``candidate``, so response timing does not leak the secret."""
        # compare_digest on str only accepts ASCII; bytes accept anything a client may send.
        return hmac.compare_digest(self._value.encode(), candidate.encode())

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._value))
