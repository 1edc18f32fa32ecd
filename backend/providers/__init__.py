"""Voice providers behind one adapter interface: Qwen, ElevenLabs, Cartesia and the offline ``local``."""
