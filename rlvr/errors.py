"""User errors: a bad config, data file, model directory, resume request or registry name.

Each is a `UserError` whose message names the fix; `exit_on_user_error` turns one into a single
``error: <message>`` line on stderr and exit status 2 (no traceback). The subclasses live with
what raises them (`rlvr.config.ConfigError`, `rlvr.data.chat.DataError`, `rlvr.checkpoint.ResumeError`,
`rlvr.registry.RegistryError`), except `ModelError`, which the model loaders and the GGUF import
share. This module imports nothing from rlvr, so anything may import it.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator

__all__ = ["UserError", "ModelError", "exit_on_user_error"]


class UserError(Exception):
    """An error caused by the user's input; its message says how to fix it."""


class ModelError(UserError, ValueError):
    """A model directory or file that cannot be used (missing config or tokenizer, unsupported GGUF, ...)."""


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Turn the errors whose message names the fix into ``error: <message>`` on stderr and exit status 2."""
    try:
        yield
    except UserError as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        print(f"error: {message}", file=sys.stderr, flush=True)
        sys.exit(2)
