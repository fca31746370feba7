"""Ctrl-C in `rlvr-train`: the step in flight finishes, a checkpoint is saved, the run exits with 130.

A first SIGINT only raises a flag that the loop reads between steps (`CtrlC.pressed`); stopping in
the middle of an update would leave weights that belong to no step, so the checkpoint would not
resume exactly. Across ranks the flag is a vote every rank joins at the same step, so all of them
save the same step. A second Ctrl-C stops at once, without a checkpoint of the step in flight.
Worker pools (verifiers, sandbox) live in sessions of their own, so a terminal's SIGINT never
reaches them: the finishing step is scored as usual.
"""
from __future__ import annotations

import signal
import threading
from typing import Any, Callable

from rlvr.distributed import all_reduce_sum

__all__ = ["CtrlC"]


class CtrlC:
    """Context manager: while inside, SIGINT sets a flag instead of raising (main thread only)."""

    def __init__(self, say: Callable[[str], None]):
        self.say, self.flag, self.previous = say, False, None

    def __enter__(self) -> "CtrlC":
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.flag:  # the second press: stop now
            raise KeyboardInterrupt
        self.flag = True
        self.say("Ctrl-C: finishing this step, then saving a checkpoint (Ctrl-C again stops at once, without one)")

    def pressed(self, world_size: int = 1) -> bool:
        """Whether Ctrl-C was pressed on any rank (a collective when there are several)."""
        return self.flag if world_size == 1 else all_reduce_sum(1.0 if self.flag else 0.0) > 0
