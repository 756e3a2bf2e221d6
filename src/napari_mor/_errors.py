"""Exceptions and warnings shared by the whole package."""


class MorError(ValueError):
    """Bad input or an impossible request.

    The message says what is wrong, with the values seen, and how to fix it.
    Subclassing ``ValueError`` keeps ``except ValueError`` callers working.
    """


class MorWarning(UserWarning):
    """Input that was usable but suspicious (e.g. NaN voxels that were masked)."""
