"""The `voicegate` program: its commands (`voicegate.cli`) stand on everything else, the queue consumers and
the operator scripts included, and nothing imports them."""
