"""Exceptions the engine raises; their messages are written for the person running the tool."""


class EngineError(Exception):
    """A problem with the input, the model or the runtime, explained in plain words."""


class Cancelled(EngineError):
    """The caller asked to stop; nothing was left at the output path."""

    def __init__(self, message="Cancelled by the user; no output was written."):
        super().__init__(message)
