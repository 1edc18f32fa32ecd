"""The offline ``local`` provider: a stock Piper voice (VITS on onnxruntime) adapted to a sample with WORLD.

It is an honest stand-in for development and tests, not a neural voice clone: it matches pitch
level and range, speaking rate (through the model's own durations) and the average spectral envelope
of the reference sample.
"""
