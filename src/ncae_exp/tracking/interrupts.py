"""SIGTERM (what schedulers, ``docker stop`` and a plain ``kill`` send) ends a run the way
Ctrl-C does: a :class:`Terminated` — a ``KeyboardInterrupt`` — is raised in the main thread,
so the run saves its best-so-far model and results and ends KILLED, not RUNNING forever.

A second SIGTERM while the run saves is ignored (a scheduler's SIGKILL follows anyway); a
second Ctrl-C still stops at once.
"""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C."""


def _on_sigterm(signum, frame) -> None:
    signal.signal(signal.SIGTERM, _ignore)
    raise Terminated(f"signal {signum} (SIGTERM)")


def _ignore(signum, frame) -> None:
    log.warning("SIGTERM again: still saving the run's results")


def install_sigterm_handler() -> bool:
    """Route SIGTERM to :class:`Terminated` (only the main thread may set a handler);
    True when installed. Idempotent."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) not in (_on_sigterm, _ignore):
        signal.signal(signal.SIGTERM, _on_sigterm)
    return True


def exit_status(err: KeyboardInterrupt) -> int:
    """The shell's convention: 128 + the signal's number (130 Ctrl-C, 143 SIGTERM)."""
    return 128 + (signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT)
