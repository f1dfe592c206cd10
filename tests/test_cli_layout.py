"""The layout a newcomer relies on: each service's Dockerfile names its role module, whose command
``seghw serve ROLE`` exists; ``seghw status`` has one set of options whichever path answers it; the
local stack's state file round-trips."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("trainer", "visualdl", "monitor", "proxy")


@pytest.mark.parametrize("service", SERVICES)
def test_each_dockerfile_names_its_role_module_one_hop_away(service):
    text = (ROOT / "services" / service / "Dockerfile").read_text(encoding="utf-8")
    m = re.search(r"^# Role: (shared/seghw/roles/\w+\.py) \(`seghw serve (\w+)`\)", text, flags=re.M)
    assert m, f"services/{service}/Dockerfile does not name its role module"
    assert (ROOT / m.group(1)).is_file() and m.group(2) == service
    from typer.main import get_command

    from seghw.cli.app import serve

    assert service in get_command(serve).commands


def _seghw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seghw.cli", *args], capture_output=True, text=True, timeout=60)


def test_status_has_one_set_of_options_on_both_paths(capsys):
    fast = _seghw("status", "--help")
    assert fast.returncode == 0 and "--every" in fast.stdout
    from seghw.cli.app import main

    with pytest.raises(SystemExit) as exc:  # through the typer app, as `seghw --help` lists it
        main(["status", "--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == fast.stdout
    listed = _seghw("--help")
    assert listed.returncode == 0 and re.search(r"status\s+Health of every run", listed.stdout)


def test_a_bad_status_option_is_one_usage_error_on_both_paths(capsys):
    fast = _seghw("status", "--evry", "3")
    assert fast.returncode == 2 and "unrecognized arguments: --evry" in fast.stderr
    from seghw.cli.app import main

    with pytest.raises(SystemExit) as exc:
        main(["status", "--evry", "3"])
    assert exc.value.code == 2 and "unrecognized arguments: --evry" in capsys.readouterr().err


def test_the_state_file_round_trips_and_ignores_keys_it_does_not_know(tmp_path):
    from seghw.stack.state import State, read_state, write_state

    state = State(pid=4321, create_time=1.5, redis_url="redis://:pw@127.0.0.1:6390/0", log_root=tmp_path / "models",
                  log_file=tmp_path / "stack.log", visualdl_url="http://127.0.0.1:8040",
                  visualdl_probe="http://127.0.0.1:8040", proxy={"url": "http://127.0.0.1:8040", "user": "v",
                                                               "upstream": "127.0.0.1:18040"})
    write_state(state, tmp_path)
    assert read_state(tmp_path) == state
    data = json.loads((tmp_path / "state.json").read_text())
    assert data["log_root"] == str(tmp_path / "models") and (tmp_path / "state.json").stat().st_mode & 0o077 == 0
    data["written_by_a_newer_version"] = True
    (tmp_path / "state.json").write_text(json.dumps(data))
    assert read_state(tmp_path) == state


def test_a_damaged_state_file_is_one_line_naming_it(tmp_path):
    from seghw.stack.settings import StackError
    from seghw.stack.state import read_state

    (tmp_path / "state.json").write_text('{"pid": 1}')
    with pytest.raises(StackError, match=r"cannot read the stack state .*state\.json.*remove it"):
        read_state(tmp_path)
