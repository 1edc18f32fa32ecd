"""Clones: starting one, from whichever source a route or an operator names (`start`); the worker's step
that takes an attempt to a synced provider voice (`step`); the voice's manifest it writes (`manifest`);
giving a voice a provider voice again (`portability`) and the synthesis jobs that wait for it (`heal`)."""
