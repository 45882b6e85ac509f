"""User-facing errors: one line that names the problem and what to do about it."""


class GeoSegError(Exception):
    """An error caused by the user's input or environment, shown without a traceback."""


class Resumable(GeoSegError):
    """A job that stopped with its finished blocks staged: running it again resumes it."""


class Interrupted(Resumable):
    """The user interrupted a job (Ctrl-C); the message says what was kept and how to resume.
    The CLI prints it without ``error:`` and exits 130, as shells expect after SIGINT."""
