"""Ctrl-C for the watching commands: the first stop winds down, a second one during the wind-down is
ignored (``timeout -s INT`` sends the signal to the command and then to its process group)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from seghw.interrupts import one_interrupt_stops

from stack_helpers import SEGHW, ctrl_c_works


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
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ctrl_c()  # a copy that comes after the block, while the command exits: nothing raised


def test_without_a_stop_the_block_gives_ctrl_c_back(ctrl_c_raises):
    with one_interrupt_stops():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        ctrl_c()


LATE_SECOND_COPY = """
import os, signal, sys, time
from seghw.interrupts import one_interrupt_stops
with one_interrupt_stops():
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except KeyboardInterrupt:
        print("stopped", flush=True)
os.kill(os.getpid(), signal.SIGINT)  # the process group's copy, after the last status
time.sleep(0.2)
sys.exit(0)
"""


def test_a_late_second_copy_does_not_turn_the_exit_code_into_130():
    # What `timeout -s INT` does on a busy machine: its copy to the process group lands after the
    # command has printed its last status and left the block.
    res = subprocess.run([sys.executable, "-c", LATE_SECOND_COPY], capture_output=True, text=True, timeout=30,
                         preexec_fn=ctrl_c_works)
    assert (res.returncode, res.stdout, res.stderr) == (0, "stopped\n", "")


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


CTRL_C_WHILE_SEGHW_IMPORTS = """
import os, runpy, signal, sys

class CtrlC:  # pressed while `seghw` imports its command-line app, before any command runs
    def find_spec(self, name, path=None, target=None):
        if name == "seghw.cli.app":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = [sys.argv[1], "train", "--help"]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_ctrl_c_while_the_seghw_command_starts_exits_130_without_a_traceback():
    res = subprocess.run([sys.executable, "-c", CTRL_C_WHILE_SEGHW_IMPORTS, SEGHW], capture_output=True,
                         text=True, timeout=60, preexec_fn=ctrl_c_works)
    assert (res.returncode, res.stdout, res.stderr) == (130, "", "")
