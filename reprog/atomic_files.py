"""Files that appear whole or not at all, with the permissions the user's umask asks for.

Every file the project writes for people (exports, `metrics.json`) goes through `write_files`: each is
written to a temporary name beside its target, flushed to disk, then renamed over it. A kill at any
moment leaves either the old file or the new one, never a truncated one. The temporary file is created
with mode 0o666 through `os.open`, so the umask applies (`tempfile` and safetensors' own writer use
0o600, which keeps a shared program unreadable to colleagues on a cluster).
"""

import os
import secrets
from collections.abc import Mapping
from pathlib import Path


def _write_temp(temp: Path, data: bytes) -> None:
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_files(files: Mapping[str | Path, bytes | str]) -> list[Path]:
    """Write every file to a temporary name first, then rename them in the given order.

    No target is touched until every file is written in full; only a kill between two renames can leave
    the first ones renamed and not the rest, so put first the file that stands on its own. Each temporary name is
    listed before the file is created, so an exception at any moment (a signal's, too) removes every one of them.
    """
    temps: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            temps.append((path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp"), path))
            _write_temp(temps[-1][0], data.encode() if isinstance(data, str) else data)
        for temp, path in temps:
            os.replace(temp, path)
    finally:
        for temp, _ in temps:
            temp.unlink(missing_ok=True)
    return [path for _, path in temps]


def write_file(path: str | Path, data: bytes | str) -> Path:
    """One file, atomically (see `write_files`)."""
    return write_files({path: data})[0]
