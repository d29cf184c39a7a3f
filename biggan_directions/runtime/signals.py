"""Ctrl-C, SIGTERM (timeout, Slurm, Ray) and SIGHUP (the terminal closed) handled alike: stop cleanly, keep the work."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

SIGHUP = getattr(signal, "SIGHUP", None)
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), SIGHUP)
                     if s is not None)
# The signals that end work the way Ctrl-C does (SIGINT raises KeyboardInterrupt by itself).
TERM_SIGNALS = tuple(s for s in STOP_SIGNALS if s != signal.SIGINT)


def _handled(candidates: tuple) -> tuple:
    """The signals to catch now: all of `candidates`, except SIGHUP when it is ignored (started
    under nohup: closing the terminal must not stop the work)."""
    return tuple(s for s in candidates
                 if not (s == SIGHUP and signal.getsignal(s) == signal.SIG_IGN))


@contextmanager
def stop_flag() -> Iterator[threading.Event]:
    """For loops that can stop between two steps (discovery): the first SIGINT, SIGTERM or
    SIGHUP sets the yielded event, which the loop checks after each step (so a checkpoint holds
    a whole step); a second one raises KeyboardInterrupt at once. Outside the main thread
    signals cannot be caught, and the event is only set by the caller."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.getsignal(s) for s in _handled(STOP_SIGNALS)}

    def handler(signum, frame):
        if stop.is_set():
            _restore(previous)
            raise KeyboardInterrupt
        stop.set()

    for s in previous:
        signal.signal(s, handler)
    try:
        yield stop
    finally:
        _restore(previous)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """For work that cleans up on KeyboardInterrupt (render, score, batch): SIGTERM and SIGHUP
    raise KeyboardInterrupt like Ctrl-C, so temporary files are removed and records closed."""
    if not TERM_SIGNALS or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in _handled(TERM_SIGNALS)}

    def handler(signum, frame):
        raise KeyboardInterrupt

    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        _restore(previous)


def _restore(previous: dict) -> None:
    for s, h in previous.items():
        signal.signal(s, h)


@contextmanager
def hangup_calls(callback) -> Iterator[list]:
    """For servers that handle SIGINT and SIGTERM themselves but not SIGHUP (uvicorn): while
    the block runs, SIGHUP (unless ignored: nohup) calls `callback()` instead of interrupting
    whatever the event loop is doing; the yielded list records each SIGHUP received, so the
    caller can end as Ctrl-C would once the server has shut down."""
    received: list = []
    if SIGHUP is None or threading.current_thread() is not threading.main_thread() \
            or not _handled((SIGHUP,)):
        yield received
        return
    previous = {SIGHUP: signal.getsignal(SIGHUP)}

    def handler(signum, frame):
        received.append(signum)
        callback()

    signal.signal(SIGHUP, handler)
    try:
        yield received
    finally:
        _restore(previous)
