"""Read a file's C2PA manifest back and say whether it validates (integrity) and is trusted (chain).

c2pa-rs reports one of three states for a manifest: `Invalid` (a hash, the signature or the signing
certificate's profile fails), `Valid` (intact, but the certificate chains to no configured anchor) and
`Trusted` (intact and chaining to an anchor). A file with no manifest at all is `unsigned` here.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any, Final, Literal

import c2pa
import msgspec

from backend.audio.sniff import SNIFF_BYTES, sniff_audio
from backend.errors import ProvenanceUnreadable
from backend.provenance.credentials import ANCHORS_VAR, SIGNER_EKUS, parse_certificates, read_pem
from backend.provenance.devca import dev_trust_anchor

if TYPE_CHECKING:
    from backend.settings import Settings

#: The audio formats voicegate signs, by every name callers use for them.
SIGNED_FORMATS: Final = {
    "audio/wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/x-wav": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/mpeg": "audio/mpeg",
    "audio/mp3": "audio/mpeg",
}
VerifyState = Literal["trusted", "valid", "invalid", "unsigned"]


def c2pa_settings(trust_anchors_pem: bytes | None) -> dict[str, Any]:
    """c2pa-rs settings for signing and reading: offline, verifying, trusting only ``trust_anchors_pem``.

    Nothing reaches the network: no remote manifests, no OCSP, and an empty host allow-list, which
    c2pa-rs takes as "block everything". The EKU list makes c2pa-rs accept what the start-up check accepts.
    """
    trust: dict[str, str] = {"trust_config": "\n".join(oid.dotted_string for oid in SIGNER_EKUS)}
    if trust_anchors_pem is not None:
        trust["user_anchors"] = trust_anchors_pem.decode("ascii", errors="replace")
    return {
        "verify": {
            "verify_after_reading": True,
            "verify_after_sign": True,
            "verify_trust": True,
            "remote_manifest_fetch": False,
            "ocsp_fetch": False,
        },
        "core": {"allowed_network_hosts": []},
        "trust": trust,
        "builder": {"thumbnail": {"enabled": False}},
    }


def signed_format(mime: str | None, data: bytes) -> str:
    """The canonical MIME type of ``data`` among those voicegate signs; ``mime`` None means sniff it."""
    sniffed = sniff_audio(data[:SNIFF_BYTES])
    wanted = sniffed if mime is None else SIGNED_FORMATS.get(mime.lower())
    if wanted not in {"audio/wav", "audio/mpeg"}:
        raise ProvenanceUnreadable(
            f"only WAV and MP3 files carry voicegate's manifests, not {mime or sniffed or 'this'}"
        )
    if sniffed != wanted:
        raise ProvenanceUnreadable(f"the file is not {wanted} (its first bytes say {sniffed or 'not audio'})")
    return wanted


class ValidationStatus(msgspec.Struct, frozen=True):
    """One finding of the validator: a C2PA status code and what it means."""

    code: str
    explanation: str | None = None


class VerifyResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a file's manifest says and whether it holds."""

    state: VerifyState
    mime_type: str
    failures: tuple[ValidationStatus, ...] = ()
    """The validator's failure codes for the active manifest (an untrusted but intact one lists
    `signingCredential.untrusted` and is still valid)."""
    manifest_store: dict[str, Any] | None = None
    """The whole manifest store as c2pa's Reader reports it (None for an unsigned file)."""

    @property
    def valid(self) -> bool:
        """True when hashes, signature and certificate profile all check out."""
        return self.state in {"valid", "trusted"}

    @property
    def trusted(self) -> bool:
        """True when the file is valid and its certificate chains to a configured trust anchor."""
        return self.state == "trusted"

    @property
    def active_manifest(self) -> dict[str, Any] | None:
        """The manifest that describes the file as it is now."""
        if self.manifest_store is None:
            return None
        manifests: dict[str, Any] = self.manifest_store.get("manifests", {})
        return manifests.get(self.manifest_store.get("active_manifest", ""))

    def assertion(self, label: str) -> dict[str, Any] | None:
        """The data of the active manifest's assertion ``label`` (`c2pa.actions` also finds `c2pa.actions.v2`)."""
        for item in (self.active_manifest or {}).get("assertions", []):
            if item.get("label") in {label, f"{label}.v2"}:
                data: dict[str, Any] = item.get("data", {})
                return data
        return None


class Verifier:
    """Reads manifests with a fixed set of trust anchors. Safe to share between threads (one c2pa Context,
    used only for shared reads; each call makes its own Reader)."""

    def __init__(self, trust_anchors_pem: bytes | None = None) -> None:
        self._context = c2pa.Context.from_dict(c2pa_settings(trust_anchors_pem))

    @classmethod
    def from_settings(cls, settings: Settings) -> Verifier:
        """A verifier trusting VOICEGATE_C2PA_TRUST_ANCHORS and, in embedded mode, the development CA (if one
        was made: verifying never creates it)."""
        anchors = b""
        if settings.embedded:
            anchors += dev_trust_anchor(settings.data_dir) or b""
        if settings.c2pa_trust_anchors is not None:
            configured = read_pem(settings.c2pa_trust_anchors, ANCHORS_VAR)
            parse_certificates(configured, ANCHORS_VAR, settings.c2pa_trust_anchors)
            anchors += configured
        return cls(anchors or None)

    def verify(self, data: bytes, mime: str | None = None) -> VerifyResult:
        """Validate the manifest embedded in ``data`` (WAV or MP3; ``mime`` None: sniffed).

        Raises ProvenanceUnreadable when the bytes are not a WAV or MP3 c2pa can parse (truncated,
        garbage, another format). A file without a manifest is not an error: its state is `unsigned`.
        """
        mime_type = signed_format(mime, data)
        try:
            with c2pa.Reader(mime_type, io.BytesIO(data), context=self._context) as reader:
                store: dict[str, Any] = json.loads(reader.json())
        except c2pa.C2paError.ManifestNotFound:
            return VerifyResult(state="unsigned", mime_type=mime_type)
        except c2pa.C2paError as exc:
            raise ProvenanceUnreadable(f"the file cannot be read as {mime_type}: {exc}") from exc
        reported = str(store.get("validation_state", "Invalid"))
        state: VerifyState = "trusted" if reported == "Trusted" else "valid" if reported == "Valid" else "invalid"
        results = store.get("validation_results", {}).get("activeManifest", {})
        failures = tuple(
            ValidationStatus(code=str(item.get("code")), explanation=item.get("explanation"))
            for item in results.get("failure", [])
        )
        return VerifyResult(
            state=state,
            mime_type=mime_type,
            failures=failures,
            manifest_store=store,
        )

    def close(self) -> None:
        """Free the native c2pa context."""
        self._context.close()


def summarize(result: VerifyResult) -> list[str]:
    """Lines describing the active manifest for a person: who signed, with what, and each assertion."""
    manifest = result.active_manifest
    if manifest is None:
        return []
    lines = [f"manifest {manifest.get('label', '?')}"]
    for generator in manifest.get("claim_generator_info", []):
        lines.append(f"  claim generator: {generator.get('name', '?')} {generator.get('version', '')}".rstrip())
    signature = manifest.get("signature_info", {})
    if signature:
        lines.append(
            f"  signed by: {signature.get('common_name', '?')} ({signature.get('issuer', '?')}), "
            f"{str(signature.get('alg', '?')).upper()}"
        )
    for item in manifest.get("assertions", []):
        lines.append(f"  {item.get('label', '?')}: {_describe(item.get('data'))}"[:300])
    return lines


def _describe(data: object) -> str:
    if not isinstance(data, dict):
        return json.dumps(data)[:200]
    if isinstance(data.get("actions"), list):
        actions = []
        for action in data["actions"]:
            source = str(action.get("digitalSourceType", "")).rsplit("/", 1)[-1]
            actions.append(f"{action.get('action', '?')}" + (f" ({source})" if source else ""))
        return ", ".join(actions)
    return ", ".join(f"{key}={_scalar(value)}" for key, value in data.items())


def _scalar(value: object) -> str:
    if isinstance(value, dict):
        return " ".join(str(part) for part in value.values())
    return "null" if value is None else str(value)
