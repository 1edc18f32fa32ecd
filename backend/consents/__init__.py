"""Consent: spoken consents (a phrase recorded and checked offline, kept with its speaker's voiceprint as evidence:
`service`, `phrase`), the wording a checkbox agrees to (`wording`), their evidence purged (`purge`) and what the
routes take and answer (`types`). The consent a sample is stored under is `backend.samples.upload`'s; what each
consent state allows is `backend.policy.consent`."""
