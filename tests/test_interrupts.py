"""Ctrl-C for the watching commands: the first stop winds down, a second one during the wind-down is
ignored (``timeout -s INT`` sends the signal to the command and then to its process group)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from seghw.interrupts import one_interrupt_stops


@pytest.fixture
def ctrl_c_raises():
    # As in a terminal: under a runner started in a shell's background SIGINT arrives ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)  # the handler runs on the main thread's next bytecode


def test_a_second_ctrl_c_during_the_wind_down_is_ignored(ctrl_c_raises):
    wound_down = False
    with one_interrupt_stops():
        with pytest.raises(KeyboardInterrupt):
            ctrl_c()
        ctrl_c()  # the second copy, while the command prints its last status
        wound_down = True
    assert wound_down
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        ctrl_c()  # and after the block, Ctrl-C is Python's own again


def test_without_the_block_the_second_ctrl_c_breaks_the_wind_down(ctrl_c_raises):
    # What the block protects against: the default handler raises on every copy.
    with pytest.raises(KeyboardInterrupt):
        try:
            ctrl_c()
        except KeyboardInterrupt:
            ctrl_c()


def test_a_process_that_ignores_ctrl_c_keeps_ignoring_it():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with one_interrupt_stops():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            ctrl_c()  # nothing raised
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
