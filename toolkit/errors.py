"""Errors that the CLI turns into a one-line message instead of a traceback."""


class AdtkError(Exception):
    """A user-facing error: bad input, a missing file, an impossible request.

    The CLI prints ``Error: <message>`` and exits with code 2; library callers can catch it.
    """


class ManifestError(AdtkError):
    """A manifest that does not follow the schema (names the column or row at fault)."""
