"""Ctrl-C for the commands that watch until they are stopped (``--monitor``, ``--watch``, ``logs -f``)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


def _stop(signum, frame) -> None:
    # Ignored from here on: `timeout -s INT` signals the command and then its whole process group, and a
    # terminal's Ctrl-C may be pressed twice; a second stop must not break the wind-down that prints the
    # last status and sets the exit code.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


@contextlib.contextmanager
def one_interrupt_stops() -> Iterator[None]:
    """Inside, the first SIGINT raises KeyboardInterrupt and any later one is ignored. After a stop it
    stays ignored once the block ends, because the command is then exiting; without one, the block
    gives SIGINT back as it found it. A process that was started with SIGINT ignored (a shell's
    background job) keeps it ignored."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is not signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, _stop)
    try:
        yield
    finally:
        # The second copy from `timeout` can come late, on a busy machine after the last status is
        # printed. Python's default handler would then raise during the exit, or after the
        # interpreter has reset SIGINT to the system default, which kills the process with 130.
        if signal.getsignal(signal.SIGINT) is _stop:
            signal.signal(signal.SIGINT, previous)
