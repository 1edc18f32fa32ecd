"""What the tests and the benchmarks share to run a local voicegate and feed it, beside the provider fakes
(`fakes/`): `voicegate up` started on free ports and waited for, a dev token minted against it (`up`), speech
and other audio made on this machine (`audio_corpus`, `speech_maker`: espeak-ng) or read from the shared
LibriSpeech clips (`clips`), rows written straight into its database (`db`), a timed streaming request
(`streaming`), a signing chain (`certs`), GE2E, the speaker encoder voicegate ran before ECAPA-TDNN (`ge2e`, for
the bench's comparison) and the layers the code stands on (`layers`).

A development aid of the checkout, like `fakes/`: no module that ships imports it (tests/unit/test_layers.py),
and neither the wheel nor the image holds it; the benchmarks run with it and without `tests/`.
"""
