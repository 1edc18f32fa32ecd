"""What a `voicegate` command says when it cannot do its work."""

from __future__ import annotations


class CommandError(Exception):
    """The command cannot do its work; the message is one line for the user (no traceback). The exit code
    is 1, or 2 when what the command was given to start with does not work (as a configuration error)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
