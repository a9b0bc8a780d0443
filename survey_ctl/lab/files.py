"""Writing the lab's files: only when their content changes, with the right mode."""

from __future__ import annotations

import os
from pathlib import Path


def write_file(path: Path, content: str, mode: int) -> bool:
    """Write `content` to `path` with `mode` unless it is already so; True if it changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode()
    if path.is_file() and path.read_bytes() == data:
        if (path.stat().st_mode & 0o777) != mode:
            path.chmod(mode)
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.chmod(mode)
    tmp.replace(path)
    return True
