"""The local stack's state file (``<stack dir>/state.json``): what ``up`` started, read by ``down``,
``status``, ``submit``, ``stop``, ``logs`` and by ``seghw.connection`` (the stack's Redis)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from seghw.atomic import write_json_atomic
from seghw.stack.settings import StackError, stack_dir

STATE_FILE = "state.json"


@dataclass
class State:
    """What ``stack up`` started."""

    pid: int
    create_time: float | None
    redis_url: str
    log_root: Path
    log_file: Path
    visualdl_url: str
    visualdl_probe: str
    visualdl_host: str = "127.0.0.1"
    visualdl_port: int = 8040
    redis_managed: bool = True
    redis_port: int | None = None
    proxy: dict[str, str] | None = None  # url, user, upstream: when VISUALDL_PASSWORD guards VisualDL
    procfile: str = ""
    started_at: str = ""
    cwd: str = ""
    kind: str = "local"
    processes: list[dict[str, Any]] = field(default_factory=list)  # pid, create_time, cmd of each

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        known = {f.name for f in fields(cls)}
        state = cls(**{k: v for k, v in data.items() if k in known})
        state.log_root, state.log_file = Path(state.log_root), Path(state.log_file)
        return state

    def to_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def state_path(directory: Path | None = None) -> Path:
    return (directory or stack_dir()) / STATE_FILE


def read_state(directory: Path | None = None) -> State | None:
    path = state_path(directory)
    try:
        return State.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise StackError(f"cannot read the stack state {path}: {exc}; remove it if no stack runs") from None


def write_state(state: State, directory: Path | None = None) -> Path:
    # The state holds the local Redis password: readable by its owner only.
    return write_json_atomic(state_path(directory), state.to_json(), mode=0o600)


def remove_state(directory: Path | None = None) -> None:
    state_path(directory).unlink(missing_ok=True)
