"""Rules more than one area needs, below them all: what a sample is stored under and whether its speaker is its
consent's (`consent`), what each state of a consent allows (`consent_states`), and whether a voice can speak yet
(`speaker`)."""
