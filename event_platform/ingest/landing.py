"""The landing folder's convention: what counts as a landed file, and when it landed.

Writers write under a temporary name (a dot-file or `*.tmp`) and rename when done; a rename is
atomic on one filesystem, so a listed file is always complete. A file "landed" at the later of
its mtime and ctime: a rename updates ctime, so a file written long ago and renamed in now is
still seen as new by a high-water-mark cursor.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class LandedFile:
    landed_ns: int
    name: str
    size: int
    mtime_ns: int

    @property
    def fingerprint(self) -> str:
        """Changes when a new version of the file replaces the old one under the same name."""
        return fingerprint_of(self.size, self.mtime_ns)


def fingerprint_of(size: int, mtime_ns: int) -> str:
    """A file version's fingerprint: a hard link or a copy with its mtime keeps it."""
    return f"{size}-{mtime_ns}"


def file_fingerprint(path: Path) -> str:
    stat = path.stat()
    return fingerprint_of(stat.st_size, stat.st_mtime_ns)


def is_landed_name(name: str) -> bool:
    return not name.startswith(".") and not name.endswith(".tmp")


def landed_files(landing_dir: Path) -> list[LandedFile]:
    """Complete files in the landing folder, oldest landing first; a missing folder is empty."""
    if not landing_dir.is_dir():
        return []
    files = []
    with os.scandir(landing_dir) as entries:
        for entry in entries:
            if not is_landed_name(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            stat = entry.stat(follow_symlinks=False)
            files.append(
                LandedFile(
                    landed_ns=max(stat.st_mtime_ns, stat.st_ctime_ns),
                    name=entry.name,
                    size=stat.st_size,
                    mtime_ns=stat.st_mtime_ns,
                )
            )
    files.sort()
    return files


class LandingError(ValueError):
    """A path that cannot be landed; `str()` is one line naming it and why."""


def landable(path: Path) -> Path:
    """The regular file `path` points to, through any symlinks, or a `LandingError`.

    A symlink is resolved here, against the folder it sits in: landing the link itself would
    make a relative target resolve against the landing folder, i.e. another file.
    """
    if not path.exists() and not path.is_symlink():
        raise LandingError(f"no such file: {path}")
    try:
        target = path.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        raise LandingError(f"broken symlink: {path}") from None
    if not target.is_file():
        kind = "a folder" if target.is_dir() else "not a regular file"
        raise LandingError(f"{kind}: {path}")
    return target


def land(source: Path, landing_dir: Path, name: str) -> Path:
    """Put the file `source` points to into `landing_dir` under `name`, atomically.

    Hard-linked when it can be (no copy of a big file), else copied with its mtime, so the
    landed file keeps the fingerprint of its source either way. A different file of that name
    is replaced; the temporary name is a dot-file, which the landing sensor ignores.
    """
    source = landable(source)
    landing_dir.mkdir(parents=True, exist_ok=True)
    target = landing_dir / name
    if target.exists() and os.path.samefile(source, target):
        return target
    temporary = landing_dir / f".{name}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copy2(source, temporary)
    os.replace(temporary, target)
    return target
