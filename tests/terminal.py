"""A pseudo-terminal that sends Ctrl-C only once the program is waiting for input.

In cooked mode Ctrl-C is a signal. One that lands after a program wrote its prompt but before
it entered ``read`` is handled without interrupting anything and the program then blocks in
``read`` (Python checks for signals between bytecodes, not inside a system call that has not
started yet). A person never types that fast; a test does. So the test waits until the program
sleeps in a system call that waits for input, as a person's keystroke would find it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pexpect

# System calls a program waits for terminal input in, by architecture.
_WAITING = {
    "x86_64": {0, 7, 23, 232, 270, 271, 281, 441},  # read poll select epoll_wait pselect6 ppoll
    "aarch64": {22, 63, 72, 73, 441},  # epoll_pwait read pselect6 ppoll epoll_pwait2
}.get(os.uname().machine, set())


def waiting_for_input(pid: int) -> bool | None:
    """Whether the process sleeps in a system call that waits for input; None when unknown."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        call = Path(f"/proc/{pid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return None
    if not _WAITING:
        return None
    return call.isdigit() and state == "S" and int(call) in _WAITING  # else "running"


class Terminal(pexpect.spawn):  # type: ignore[misc]
    """``pexpect.spawn`` whose Ctrl-C waits until the program waits for input."""

    def wait_for_reader(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            known = waiting_for_input(self.pid)
            if known is None:
                time.sleep(0.3)  # cannot tell here: give the program time to reach its read
                return
            if known:
                return
            time.sleep(0.01)

    def send(self, s: Any) -> int:
        if "\x03" in (s.decode() if isinstance(s, bytes) else str(s)):
            self.wait_for_reader()
        return int(super().send(s))

    def sendintr(self) -> None:
        self.wait_for_reader()
        super().sendintr()
