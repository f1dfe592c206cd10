"""Where Redis is (``seghw.connection.locate``) and how its failures read: one answer for every command."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from seghw import connection
from seghw.connection import RedisUnavailable, locate


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """An empty compose project folder as the current folder, with no Redis settings around."""
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    monkeypatch.chdir(tmp_path)
    for name in ("REDIS_URL", "SEGHW_STACK_DIR", "COMPOSE_FILE", "REDIS_PASSWORD", "REDIS_PORT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _state(directory: Path, url: str) -> Path:
    """The state file ``make up`` writes, with this Redis URL."""
    from seghw.stack.state import State, write_state

    return write_state(State(pid=1, create_time=None, redis_url=url, log_root=directory / "models",
                             log_file=directory / "stack.log", visualdl_url="http://127.0.0.1:8040",
                             visualdl_probe="http://127.0.0.1:8040"), directory)


def test_default_is_localhost_and_says_how_to_change_it(project):
    where = locate()
    assert where.url == connection.DEFAULT_REDIS_URL
    assert "REDIS_URL" in where.source and "make up" in where.source


def test_the_local_stack_started_here_is_found(project):
    state = _state(project / ".stack", "redis://:pw-of-the-stack@127.0.0.1:6390/0")
    where = locate()
    assert where.url == "redis://:pw-of-the-stack@127.0.0.1:6390/0"
    assert str(state) in where.source
    assert "pw-of-the-stack" not in where.describe()


def test_seghw_stack_dir_names_the_stack(project, monkeypatch):
    _state(project / ".stack", "redis://:a@127.0.0.1:1/0")
    _state(project / "elsewhere", "redis://:b@127.0.0.1:2/0")
    monkeypatch.setenv("SEGHW_STACK_DIR", str(project / "elsewhere"))
    assert locate().url == "redis://:b@127.0.0.1:2/0"


def test_the_project_stack_is_found_from_a_subfolder(project, monkeypatch):
    _state(project / ".stack", "redis://:a@127.0.0.1:1/0")
    sub = project / "docs"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert locate().url == "redis://:a@127.0.0.1:1/0"


def test_compose_env_that_publishes_redis_is_used(project):
    (project / ".env").write_text("REDIS_PASSWORD=s3cr3t\nREDIS_PORT=6401\n"
                                  "COMPOSE_FILE=docker-compose.yml:compose.redis-port.yml\n")
    where = locate()
    assert where.url == "redis://:s3cr3t@127.0.0.1:6401/0"
    assert "compose" in where.source
    # Compose's own .env without the port override publishes nothing: the default stays.
    (project / ".env").write_text("REDIS_PASSWORD=s3cr3t\nCOMPOSE_FILE=compose.cpu.yml\n")
    assert locate().url == connection.DEFAULT_REDIS_URL


def test_order_redis_url_then_local_stack_then_compose(project, monkeypatch):
    (project / ".env").write_text("REDIS_PASSWORD=x\nCOMPOSE_FILE=compose.redis-port.yml\n")
    assert "compose" in locate().source
    _state(project / ".stack", "redis://:a@127.0.0.1:1/0")
    assert locate().url == "redis://:a@127.0.0.1:1/0"
    monkeypatch.setenv("REDIS_URL", "redis://:z@10.0.0.9:7000/3")
    assert locate() == connection.Location("redis://:z@10.0.0.9:7000/3", "REDIS_URL")


def test_a_password_with_url_characters_is_quoted(project):
    (project / ".env").write_text("REDIS_PASSWORD=a/b@c:d\nCOMPOSE_FILE=compose.redis-port.yml\n")
    url = locate().url
    assert redis.Redis.from_url(url).connection_pool.connection_kwargs["password"] == "a/b@c:d"


def test_refused_password_names_the_source_never_the_password(redis_server, project, monkeypatch):
    _state(project / ".stack", f"redis://:wrong-pw-123@127.0.0.1:{redis_server.port}/0")
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(RedisUnavailable) as err:
        connection.connect(wait=0)
    message = str(err.value)
    assert "refused the password" in message and "the local stack" in message
    assert f"127.0.0.1:{redis_server.port}" in message
    assert "wrong-pw-123" not in message and "s3cret-pw" not in message


def test_no_password_where_one_is_needed_is_one_line(redis_server, project, monkeypatch):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{redis_server.port}/0")
    with pytest.raises(RedisUnavailable) as err:
        connection.connect(wait=0)
    assert "(REDIS_URL)" in str(err.value) and "\n" not in str(err.value)


def test_nothing_listening_waits_then_fails_in_one_line(project, monkeypatch):
    from conftest import free_port

    port = free_port()
    monkeypatch.setenv("REDIS_URL", f"redis://:pw@127.0.0.1:{port}/0")
    with pytest.raises(RedisUnavailable) as err:
        connection.connect(wait=0.5)
    assert str(err.value).startswith(f"Redis unreachable at redis://127.0.0.1:{port}/0 (REDIS_URL)")


def test_connect_waits_for_a_server_that_is_starting(redis_server):
    import threading

    redis_server.stop()
    threading.Timer(0.6, redis_server.start).start()
    conn = connection.connect(wait=15)
    assert conn.ping()
