"""Resource limits for one sandboxed execution, as one typed dataclass."""
from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["Limits"]

_MIB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Hard limits applied to every run; all enforced by the kernel or the supervisor.

    wall_s:        wall-clock seconds before the whole process tree is killed (``timeout``).
    cpu_s:         CPU seconds (RLIMIT_CPU) before the kernel kills it (``cpu_limit``);
                   ``None`` means the same as ``wall_s``.
    memory_bytes:  address-space cap (RLIMIT_AS) per process (``memory_limit``). It counts
                   virtual memory, so it must leave room for the runtime itself: a forked
                   Python worker maps ~60 MiB before user code runs.
    processes:     processes + threads the sandbox user may own (RLIMIT_NPROC).
    file_bytes:    largest file the program may write (RLIMIT_FSIZE).
    disk_bytes:    total size of the private working directory when it is a tmpfs.
    open_files:    file descriptors per process (RLIMIT_NOFILE).
    output_bytes:  bytes of stdout and of stderr kept; a program that writes more is
                   killed with status ``output_limit``.
    """

    wall_s: float = 10.0
    cpu_s: float | None = None
    memory_bytes: int = 1024 * _MIB
    processes: int = 64
    file_bytes: int = 16 * _MIB
    disk_bytes: int = 64 * _MIB
    open_files: int = 64
    output_bytes: int = 1 * _MIB

    def __post_init__(self) -> None:
        for name in ("wall_s", "memory_bytes", "processes", "file_bytes", "disk_bytes", "open_files", "output_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive, got {getattr(self, name)!r}")
        if self.cpu_s is not None and self.cpu_s <= 0:
            raise ValueError(f"Limits.cpu_s must be positive or None, got {self.cpu_s!r}")
        if self.open_files < 16:
            raise ValueError("Limits.open_files below 16 leaves no room for the runtime's own descriptors")

    @property
    def cpu_seconds(self) -> float:
        """The effective CPU limit."""
        return self.cpu_s if self.cpu_s is not None else self.wall_s

    def with_(self, **changes: object) -> "Limits":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)
