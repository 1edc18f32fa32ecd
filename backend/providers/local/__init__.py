"""The offline ``local`` provider: the stock hibari voice (``hibari-tts``, run with onnxruntime) adapted to a
sample in the model's own spectral parameters.

It is an honest stand-in for development and tests, not a neural voice clone: it matches pitch level and
range, speaking rate (through the model's own durations), formant spacing and the average spectral envelope
of the reference sample.
"""
