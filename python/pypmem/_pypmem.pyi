"""Type stubs of the Rust extension pypmem._pypmem."""

import os
from types import TracebackType
from typing import Any, Callable, Final, Literal, Protocol, SupportsIndex, final, overload

from typing_extensions import Buffer, Self

__version__: Final[str]
ENGINE_VERSION: Final[str]
DETACH_AT: Final[int]

_Path = str | bytes | os.PathLike[str] | os.PathLike[bytes]

class _HasFileno(Protocol):
    def fileno(self) -> int: ...

@final
class Mapping:
    """A file or device-DAX range mapped by pmem-sys; a writable buffer."""

    def write(
        self,
        offset: int,
        data: Buffer,
        /,
        *,
        nontemporal: bool = False,
        temporal: bool = False,
        flush: bool = True,
        drain: bool = False,
    ) -> None:
        """Copies ``data`` to ``offset`` with memcpy_to_pmem (not fenced
        unless ``drain=True``)."""
    def read(self, offset: int, length: int, /) -> bytes:
        """Returns ``length`` bytes from ``offset`` (memcpy_from_pmem)."""
    def readinto(self, offset: int, buffer: Buffer, /) -> int:
        """Fills ``buffer`` from ``offset``; returns ``len(buffer)``."""
    def memset(
        self,
        offset: int,
        value: int,
        length: int,
        /,
        *,
        nontemporal: bool = False,
        temporal: bool = False,
        flush: bool = True,
        drain: bool = False,
    ) -> None:
        """Sets ``length`` bytes from ``offset`` to ``value``."""
    def write_back(self, offset: int = 0, length: int | None = None) -> None:
        """Writes the range back (arch_wb_cache_pmem); not fenced."""
    def flush(self, offset: int = 0, length: int | None = None) -> None:
        """Makes the range durable, as mmap.flush() does (same as persist)."""
    def persist(self, offset: int = 0, length: int | None = None) -> None:
        """Makes the range durable (write back and fence, or msync)."""
    def deep_persist(self, offset: int = 0, length: int | None = None) -> None:
        """persist, then flush the device's write queues (pmem_deep_persist)."""
    def close(self) -> None:
        """Unmaps; BufferError while buffer exports are alive."""
    def __bytes__(self) -> bytes:
        """A guarded copy of the whole mapping."""
    @property
    def readonly(self) -> bool:
        """True for a read-only mapping (stores raise TypeError)."""
    @property
    def closed(self) -> bool:
        """True once close() has succeeded."""
    @property
    def size(self) -> int:
        """The mapped length in bytes."""
    @property
    def granularity(self) -> Literal["byte", "cache_line", "page"]:
        """How fine-grained durability is on this mapping."""
    @property
    def is_pmem(self) -> bool:
        """True for byte and cache-line granularity."""
    @property
    def reason(self) -> str:
        """Why the mapping has its granularity."""
    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, key: SupportsIndex, /) -> int: ...
    @overload
    def __getitem__(self, key: slice, /) -> bytes: ...
    @overload
    def __setitem__(self, key: SupportsIndex, value: int, /) -> None: ...
    @overload
    def __setitem__(self, key: slice, value: Buffer, /) -> None: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    def __release_buffer__(self, view: memoryview, /) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> None: ...

def map_file(
    path: _Path,
    size: int = 0,
    *,
    create: bool = False,
    exclusive: bool = False,
    sparse: bool = False,
    tmpfile: bool = False,
    readonly: bool = False,
    mode: int = 0o666,
) -> Mapping:
    """Maps a file (optionally creating it) and returns a Mapping."""

def memremap_pmem(fd: int | _HasFileno, offset: int, size: int, *, readonly: bool | None = None) -> Mapping:
    """Maps ``[offset, offset + size)`` of an open descriptor (read-only if
    it was opened read-only, or with ``readonly=True``)."""

def wmb_pmem() -> None:
    """The fence; raises OSError if an msync failure was recorded."""

def arch_has_pmem_api() -> bool:
    """True where stores can be made durable by flush and fence."""

def arch_has_wmb_pmem() -> bool:
    """True where wmb_pmem() completes write-backs."""

def implementation() -> str:
    """The operation table in use, e.g. ``"x86_64/avx2+clwb"``."""

def cpu_features() -> str:
    """The CPU features detected, space separated."""

def movnt_threshold() -> int:
    """Copies of at least this many bytes use non-temporal stores."""

def knobs_report() -> str:
    """The options that differ from their defaults, one per line."""

def set_option(name: str, value: str | int | None) -> None:
    """Sets an option as if it were in the environment; None resets it."""

def get_option(name: str) -> str:
    """The value of an option in force."""

def option_names() -> list[str]:
    """The names set_option() and get_option() accept."""

def record_start(path: _Path) -> None:
    """Records every mapping made from now on to the trace file ``path``."""

def record_stop() -> None:
    """Ends recording and closes the trace."""

def _crash_check(
    trace: _Path,
    image_dir: _Path,
    check: Callable[[str], object],
    max_images: int = 4096,
    seed: int = 0,
    image: str | None = None,
) -> tuple[str | None, dict[str, Any]]:
    """Checks every crash image of a trace (see pypmem.crashtest.check)."""
