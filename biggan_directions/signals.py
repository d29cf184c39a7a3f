"""Ctrl-C and SIGTERM (what `timeout`, Slurm and Ray send) handled alike: finish cleanly, keep the work."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

STOP_SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)


@contextmanager
def stop_flag() -> Iterator[threading.Event]:
    """For loops that can stop between two steps (discovery): the first SIGINT or SIGTERM sets
    the yielded event, which the loop checks after each step (so a checkpoint holds a whole
    step); a second one raises KeyboardInterrupt at once. Outside the main thread signals cannot
    be caught, and the event is only set by the caller."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def handler(signum, frame):
        if stop.is_set():
            _restore(previous)
            raise KeyboardInterrupt
        stop.set()

    for s in STOP_SIGNALS:
        signal.signal(s, handler)
    try:
        yield stop
    finally:
        _restore(previous)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """For work that cleans up on KeyboardInterrupt (render, score, batch): SIGTERM raises
    KeyboardInterrupt like Ctrl-C, so temporary files are removed and records closed."""
    sigterm = getattr(signal, "SIGTERM", None)
    if sigterm is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(sigterm)

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(sigterm, handler)
    try:
        yield
    finally:
        signal.signal(sigterm, previous)


def _restore(previous: dict) -> None:
    for s, h in previous.items():
        signal.signal(s, h)
