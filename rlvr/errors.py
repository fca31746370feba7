"""User errors (a bad config, data, model directory or resume) end the run with one line and exit 2."""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator

__all__ = ["exit_on_user_error"]


def _user_errors() -> tuple[type[BaseException], ...]:
    from rlvr.checkpoint import ResumeError
    from rlvr.config import ConfigError
    from rlvr.data.chat import DataError
    from rlvr.models import ModelError
    from rlvr.registry import RegistryError

    return (ConfigError, DataError, ModelError, ResumeError, RegistryError)



@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Turn the errors whose message names the fix into ``error: <message>`` on stderr and exit status 2."""
    try:
        yield
    except _user_errors() as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        print(f"error: {message}", file=sys.stderr, flush=True)
        sys.exit(2)
