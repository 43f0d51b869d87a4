"""The console while a run works: progress bars on a terminal, plain log lines elsewhere.

Bars (tqdm, on stderr) are drawn only when stderr is a terminal. In CI, in files and in
captured subprocesses every epoch stays one log line (``epoch 3/100 …``), which tests and
log readers grep. ``NCAE_PROGRESS=plain`` (or ``bar``) overrides the guess.

While a bar is on screen, log lines are written above it (``tqdm.write``) instead of through
it, and the lines a bar stands for (per-epoch lines, marked with :data:`PROGRESS_LINE`) are
left out of the terminal only: the run's log file (``cli.log``) still has every line.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

PROGRESS_ENV = "NCAE_PROGRESS"
SWEEP_PID_ENV = "NCAE_SWEEP_PID"  # the process that runs a sweep; its jobs elsewhere draw no bars
# ``extra=`` of a log line that a bar replaces on a terminal (the per-epoch lines)
PROGRESS_LINE = {"ncae_progress": True}


def bars_enabled(stream: IO | None = None) -> bool:
    """Whether to draw bars: ``$NCAE_PROGRESS`` (plain/bar) if set, else whether ``stream``
    (default stderr, where tqdm draws) is a terminal."""
    choice = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if choice in ("plain", "off", "0", "no", "false"):
        return False
    if os.environ.get(SWEEP_PID_ENV, str(os.getpid())) != str(os.getpid()):
        return False  # a sweep's job in a launcher's process: bars from several processes garble
    if choice in ("bar", "bars", "on", "1", "yes", "true"):
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def open_bars() -> int:
    """How many tqdm bars are on screen in this process (a sweep's bar, a fit's bar)."""
    from tqdm import tqdm

    return len(getattr(tqdm, "_instances", ()))


def progress_bar(total: int | None, initial: int = 0, desc: str = "", unit: str = "epoch", leave: bool = True,
                 file: IO | None = None):
    """A tqdm bar in this project's style: ``desc  40%|████  | 4/10 [00:02<00:03, 1.9epoch/s, …]``
    (the remaining time is tqdm's estimate from the epochs of this process; ``initial``: where
    a resumed fit starts, so its rate and ETA count only the epochs run now)."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave, file=file or sys.stderr,
                dynamic_ncols=True, smoothing=0.3)


def _is_progress_line(record: logging.LogRecord) -> bool:
    if getattr(record, "ncae_progress", False):
        return True
    # pre-training's per-epoch line (models/ncae/pretrain.py): its stage bar shows it
    return record.name.endswith(".pretrain") and str(record.msg).startswith("pretrain layer")


class _AboveBars(logging.Handler):
    """Stands in for a terminal handler while bars are shown: same level, format and filters;
    writes each line above the bars and leaves out the lines a bar stands for."""

    def __init__(self, original: logging.StreamHandler):
        super().__init__(original.level)
        self.original = original
        self.setFormatter(original.formatter)
        for flt in original.filters:
            self.addFilter(flt)

    def emit(self, record: logging.LogRecord) -> None:
        if _is_progress_line(record):
            return
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.original.stream)
        except Exception:  # noqa: BLE001 - logging must never break the run
            self.handleError(record)


def _terminal_handler(handler: logging.Handler) -> bool:
    if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
        return False
    try:
        return bool(handler.stream.isatty()) or os.environ.get(PROGRESS_ENV, "").lower() in ("bar", "bars", "on")
    except (AttributeError, ValueError):
        return False


@contextmanager
def logs_above_bars(enabled: bool = True) -> Iterator[None]:
    """While the block runs, console log handlers write above the bars (see the module's
    docstring). Re-entrant; restores the handlers when the block ends, also on Ctrl-C.
    Hydra re-creates its handlers for each job of a sweep, so this is scoped to a fit or job."""
    if not enabled:
        yield
        return
    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger) and lg.handlers]
    swapped = []
    for logger in loggers:
        for i, handler in enumerate(list(logger.handlers)):
            if _terminal_handler(handler):
                wrapper = _AboveBars(handler)
                logger.handlers[i] = wrapper
                swapped.append((logger, handler, wrapper))
    try:
        yield
    finally:
        for logger, handler, wrapper in swapped:
            if wrapper in logger.handlers:
                logger.handlers[logger.handlers.index(wrapper)] = handler
