"""Where a running ``geoseg serve`` listens, and whether a command should attach to it.

The service writes a small JSON file (:func:`service_file`); :func:`find_service` is what
:func:`geoseg.cluster.setup.connect` asks before it starts a local cluster: the service, when
it runs, answers and was started in the folder the command runs in (its workers resolve
relative paths against their own folder, so a command run elsewhere starts its own cluster
rather than read another folder's files).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

ENV = "GEOSEG_SERVICE_FILE"


def service_file() -> Path:
    """Where the running service says where it listens: ``$GEOSEG_SERVICE_FILE``, else
    ``$XDG_RUNTIME_DIR/geoseg/service.json``, else ``~/.cache/geoseg/service.json``."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    base = os.environ.get("XDG_RUNTIME_DIR") or Path.home() / ".cache"
    return Path(base) / "geoseg" / "service.json"


@dataclass(frozen=True)
class Service:
    address: str  # the scheduler, tcp://127.0.0.1:PORT
    pid: int  # the process of `geoseg serve`
    cwd: str  # the folder it was started in: its workers' working directory
    workers: int
    dashboard: str | None = None
    started: float = 0.0

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process: not ours to use
            return False
        with contextlib.suppress(OSError, IndexError):  # ended, not yet reaped: a zombie
            if Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        return True


def read_service(path: Path | None = None) -> Service | None:
    """The service the file describes, if its process still runs (a stale file is removed)."""
    path = path or service_file()
    try:
        svc = Service(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not svc.alive():
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return svc


def find_service() -> Service | None:
    """The running service a command started here should attach to, or None."""
    if os.environ.get("GEOSEG_NO_SERVICE"):
        return None
    svc = read_service()
    if svc is None or os.path.realpath(svc.cwd) != os.path.realpath(os.getcwd()):
        return None
    return svc
