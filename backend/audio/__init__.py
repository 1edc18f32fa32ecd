"""Audio: what a sample really is, decided from its bytes."""
