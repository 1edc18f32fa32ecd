"""Clones: starting one, from whichever source a route or an operator names (`start`)."""
