"""The offline ``local`` provider: espeak-ng speech adapted to a sample with the WORLD vocoder.

It is an honest stand-in for development and tests, not a neural voice clone: it matches pitch
level and range, speaking rate and the average spectral envelope of the reference sample.
"""
