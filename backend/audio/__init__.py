"""Audio: what a sample really is, decided from its bytes, and how it is made ready for a provider.

``sniff`` recognises the container, ``decode`` decodes it within bounds, ``measure`` measures it,
``process`` preprocesses it, and ``pipeline`` is the interface the rest of the backend calls;
``formats`` encodes what speech streams in.
"""
