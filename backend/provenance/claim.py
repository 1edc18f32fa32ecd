"""What a synthesized file's C2PA manifest says: made by a trained model, in which voice, under which consent."""

from __future__ import annotations

import uuid
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final, Literal

import msgspec

#: What job results and voice state report as the provenance of the audio they point to.
PROVENANCE: Final[Literal["c2pa"]] = "c2pa"
#: IPTC digital source type for media made by a model trained on sampled content (here: a cloned voice).
TRAINED_ALGORITHMIC_MEDIA: Final = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
#: Label of voicegate's own assertion (reverse domain, as the C2PA spec asks of custom labels).
SYNTHESIS_ASSERTION: Final = "dev.voicegate.synthesis"
#: The standard actions assertion; c2pa-rs writes it as `c2pa.actions.v2` in a v2 claim.
ACTIONS_ASSERTION: Final = "c2pa.actions"
GENERATOR_NAME: Final = "voicegate"


@cache
def generator_version() -> str:
    """voicegate's installed version, as the manifest's claim generator states it."""
    try:
        return version("voicegate")
    except PackageNotFoundError:  # a checkout run without `pip install -e .`
        return "0.0.0"


class SynthesisClaim(msgspec.Struct, frozen=True, kw_only=True):
    """The facts about one synthesized file that its manifest records.

    Identifiers only, never personal data: no names, no text spoken, no owner. The consent record's id
    and the version of the consent text it accepted let an auditor find the consent in voicegate's
    database; the manifest itself reveals nothing about the speaker.
    """

    voice_id: uuid.UUID
    """voicegate's id of the voice that speaks."""
    provider: str
    """The engine that synthesized the audio (`local`, `qwen`, `elevenlabs`, `cartesia`)."""
    model: str | None
    """The provider's model, when it names one."""
    consent_id: uuid.UUID | None
    """The consent record the voice was cloned under; None for a voice its owner attached from their own
    account at the provider (voicegate cloned nothing, so it holds no consent for it)."""
    consent_version: str | None
    """The version of the consent text that record accepted."""

    def assertion_data(self) -> dict[str, Any]:
        """The body of the `dev.voicegate.synthesis` assertion."""
        return {
            "voice_id": str(self.voice_id),
            "provider": self.provider,
            "model": self.model,
            "consent_id": None if self.consent_id is None else str(self.consent_id),
            "consent_version": self.consent_version,
            "generator": {"name": GENERATOR_NAME, "version": generator_version()},
        }


def manifest_definition(claim: SynthesisClaim) -> dict[str, Any]:
    """The C2PA manifest definition c2pa's Builder signs for one synthesized file."""
    generator = {"name": GENERATOR_NAME, "version": generator_version()}
    return {
        "claim_generator_info": [generator],
        "assertions": [
            {
                "label": ACTIONS_ASSERTION,
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": generator,
                        }
                    ]
                },
            },
            {"label": SYNTHESIS_ASSERTION, "data": claim.assertion_data()},
        ],
    }
