"""Files written whole or not at all, and what this machine offers a process.

Every file roboscale writes that a user or a later run reads (records, checkpoints'
state, reports, exports, study files) goes through :func:`write_atomically`: it is
written to a temporary name in the same folder and renamed over the target, so a
crash or Ctrl-C leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from roboscale.errors import BadInputError


def file_mode() -> int:
    """Mode a new file gets from an ordinary ``open(..., "w")``: 0666 less the process's
    umask (0644 under umask 022, 0600 under 077). ``mkstemp`` (and safetensors) would
    give 0600 whatever the umask."""
    return 0o666 & ~_umask()


def _umask() -> int:
    # Linux reports the umask without changing it; elsewhere, set it and put it back.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_atomically(path: str | Path, content: str | bytes | Callable[[Path], None]) -> Path:
    """Write ``content`` to ``path`` through a temporary file beside it, then rename.

    ``content``: text (UTF-8), bytes, or a function that writes the temporary path it is
    given (for pandas or pyarrow writers). The temporary file is removed on any error.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = Path(name)
    try:
        if callable(content):
            os.close(descriptor)
            content(temporary)
        else:
            data = content.encode("utf-8") if isinstance(content, str) else content
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
        os.chmod(temporary, file_mode())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, payload) -> Path:
    """``payload`` as indented JSON (with a final newline), written atomically."""
    return write_atomically(path, json.dumps(payload, indent=2) + "\n")


def read_json_object(path: str | Path, missing: str, damaged: str) -> dict:
    """The JSON object in ``path``, or a BadInputError ending in ``missing`` (no file) or
    ``damaged`` (not JSON, or JSON that is not an object): what to do about it."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path} is missing: {missing}")
    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadInputError(f"{path} is not valid JSON ({error}): {damaged}") from None
    if not isinstance(payload, dict):
        raise BadInputError(f"{path} holds a {type(payload).__name__}, not an object: {damaged}")
    return payload


def existing_ancestor(path: str | Path) -> Path:
    """``path`` itself if it exists, else its nearest existing parent."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def require_writable_folder(path: str | Path, option: str = "--out") -> None:
    """Raise BadInputError unless folder ``path`` exists as a folder or can be created,
    and files can be written where it is (or would be). Tried for real with a temporary
    folder, removed at once: permission bits say nothing about /proc, read-only mounts
    or root."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BadInputError(f"{option} {path}: is a file, not a folder; give a folder path")
    ancestor = existing_ancestor(path)
    if not ancestor.is_dir():
        raise BadInputError(f"{option} {path}: {ancestor} is a file, not a folder; give a path under a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".roboscale-probe-", dir=ancestor))
    except OSError as error:
        raise BadInputError(
            f"{option} {path}: cannot write in {ancestor} ({error.strerror}); give a folder you can write to"
        ) from None


def available_cpus() -> int:
    """CPUs this process may run on (respects affinity masks and containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
