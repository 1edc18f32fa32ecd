"""Consent: the wording a checkbox agrees to, spoken consents (a phrase recorded and checked offline, kept with
its speaker's voiceprint as evidence), and the consent every sample is stored under."""
