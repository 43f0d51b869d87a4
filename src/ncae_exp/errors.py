"""User-facing errors.

Anything the user can fix (a malformed file, an unknown name, an out-of-range value, an
unreachable server) is raised as :class:`NcaeError` with a one-line message; the CLI prints
it as ``ncae-run: error: <message>`` and exits non-zero without a traceback. Anything else
is a bug and keeps its traceback.
"""


class NcaeError(Exception):
    """An error the user can act on; ``str(err)`` is a single line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class DataError(NcaeError):
    """Bad or missing dataset input: a malformed file, wrong statistics, a failed download."""


class ConfigError(NcaeError):
    """A configuration value that is out of range or inconsistent."""


class TrackingError(NcaeError):
    """The MLflow tracking store cannot be reached or written."""


class TrainingError(NcaeError):
    """Training cannot go on (e.g. the loss diverged)."""
