"""User-facing errors: one line that names the problem and what to do about it."""


class GeoSegError(Exception):
    """An error caused by the user's input or environment, shown without a traceback."""
