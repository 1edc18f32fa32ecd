"""Keys and signing secrets kept out of reprs, logs and tracebacks; and where plain http is allowed."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re

# A query parameter that carries a credential: Storage's signed URLs (`token`), and keys some clients
# put in the URL.
_URL_CREDENTIAL = re.compile(r"(?i)([?&](?:token|access_token|apikey)=)[^&\s]*")


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


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback addresses: the only hosts a key may be sent to over plain http."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact_url_credentials(text: str) -> str:
    """`text` with the value of every credential in a URL's query string (`token=`, `access_token=`, `apikey=`)
    blanked: what an access log may record of a signed URL."""
    return _URL_CREDENTIAL.sub(r"\1[redacted]", text)


class RedactUrlCredentials(logging.Filter):
    """Blanks credentials in the query strings of the request lines an access log records (uvicorn's
    passes the path as an argument), so a signed URL's token never reaches the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, its arguments redacted."""
        # A credential is a `name=value`: the lines of requests without one (nearly all) pass as they are.
        if isinstance(record.args, tuple) and any(isinstance(arg, str) and "=" in arg for arg in record.args):
            record.args = tuple(redact_url_credentials(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True
