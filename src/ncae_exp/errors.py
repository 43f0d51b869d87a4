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


def connection_reason(err: BaseException, limit: int = 120) -> str:
    """Why a network call failed, in a few words, from the innermost cause of ``err``
    (requests and urllib3 bury it several exceptions deep): ``connection refused``,
    ``host name not resolved``, ``timed out``, else the first line of the innermost message,
    cut at a word boundary."""
    import socket

    chain, seen, cur = [], set(), err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        chain.append(cur)
        nxt = getattr(cur, "reason", None)  # urllib3's MaxRetryError keeps its cause there
        cur = nxt if isinstance(nxt, BaseException) else (cur.__cause__ or cur.__context__)
    root = chain[-1]
    if isinstance(root, ConnectionRefusedError):
        return "connection refused"
    if isinstance(root, socket.gaierror):
        return "host name not resolved"
    if isinstance(root, TimeoutError) or any("Timeout" in type(e).__name__ for e in chain):
        return "timed out"
    if isinstance(root, OSError) and root.strerror:
        return root.strerror[:1].lower() + root.strerror[1:]
    text = next((line.strip() for line in str(root).splitlines() if line.strip()), type(root).__name__)
    if len(text) > limit:
        text = text[: limit + 1].rsplit(" ", 1)[0].rstrip(",;:") + " …"
    return text
