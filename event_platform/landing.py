"""The landing folder's convention: what counts as a landed file, and when it landed.

Writers write under a temporary name (a dot-file or `*.tmp`) and rename when done; a rename is
atomic on one filesystem, so a listed file is always complete. A file "landed" at the later of
its mtime and ctime: a rename updates ctime, so a file written long ago and renamed in now is
still seen as new by a high-water-mark cursor.
"""

from __future__ import annotations

import os
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
        return f"{self.size}-{self.mtime_ns}"


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
