"""Consent: spoken consents (a phrase recorded and checked offline, kept with its speaker's voiceprint as evidence:
`service`, `phrase`), the wording a checkbox agrees to (`wording`), their evidence purged (`purge`), what the
routes take and answer (`types`), and the phrases voicegate will not speak (`spoken_text`). The consent a sample is
stored under is `backend.samples.upload`'s; what each consent state allows is `backend.policy.consent`.

This module is the area's public face: another area imports what is listed here, and nothing else of it."""

from backend.consents.spoken_text import PhrasesSaid, phrases_said, withdraw_phrases

__all__ = ["PhrasesSaid", "phrases_said", "withdraw_phrases"]
