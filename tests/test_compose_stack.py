"""The containers, for real: the CPU compose stack under a real Docker Engine, driven as a user drives
it (``docker compose up``, ``make train``, a browser on the published port, ``make status``), then
hurt (a killed trainer, a Redis restart), checked from inside (users, passwords, read-only mounts, no
telemetry, no CA left in an image) and taken down. One compose project, tests in file order."""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from browser_helpers import sees_image, sees_scalar_chart
from compose_helpers import ARTIFACTS, REPO, SERVICES, SYSTEM_CA, Project, base_images, note_timing, run
from stack_helpers import free_port, wait_until

# Image builds on a cold machine take minutes: more than the suite's 600 s per test.
pytestmark = [pytest.mark.compose, pytest.mark.timeout(1800)]
MONITOR_INTERVAL = 5.0  # the project's; "within two monitor intervals" is measured against it
ALIVE = ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8040/alive', timeout=2)"]


@pytest.fixture(scope="module")
def project(docker_env) -> Project:
    p = Project(docker_env, base_images(docker_env))
    p.env["MONITOR_INTERVAL"] = str(int(MONITOR_INTERVAL))
    yield p
    (ARTIFACTS / "compose_logs.txt").write_text(p.logs_tail(400))
    p.down("-v", "--remove-orphans")


def _queued_run(proc: subprocess.CompletedProcess) -> str:
    m = re.search(r"(?:queued|resumed) (logs_\d{8}(?:_\d+)?)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    return m.group(1)


def _visualdl_lists(p: Project, run_id: str, timeout: float = 90) -> None:
    def listed():
        p.get_json("/app/api/component_tabs")
        return [r for r in p.get_json("/app/api/runs")["data"] if r == run_id or r.endswith("/" + run_id)]

    wait_until(listed, timeout, every=1, what=f"VisualDL to list {run_id}")


# ---------------------------------------------------------------- up, train, watch


def test_up_builds_and_every_service_reports_healthy(project: Project):
    t0 = time.monotonic()
    project.compose("up", "-d", "--build", timeout=1500)
    built = time.monotonic() - t0
    health = project.wait_healthy()
    note_timing("docker compose up -d --build", built)
    note_timing("up -> all healthy", time.monotonic() - t0)
    assert set(health) == set(SERVICES) and set(health.values()) == {"healthy"}
    with urllib.request.urlopen(project.url + "/alive", timeout=10) as resp:
        assert resp.status == 204


def test_make_train_queues_through_redis_and_status_follows_it(project: Project):
    sub = project.make("train", "--preset cpu-demo --synthetic 64 --epochs 3")
    run_id = _queued_run(sub)
    assert "/app/models/" + run_id in sub.stdout
    project.first_run = run_id
    code, entry = project.wait_run(run_id, lambda e: e["state"] == "running", 180, "running")
    assert code == 0 and entry["level"] == "ok", entry
    code, entry = project.wait_run(run_id, lambda e: e["state"] == "finished", 300, "finished")
    assert code == 0, entry
    assert (entry["epoch"], entry["total_epochs"]) == (3, 3)
    table = project.make("status")
    assert table.returncode == 0 and run_id in table.stdout and "finished" in table.stdout


def test_a_browser_on_the_published_port_finds_loss_train_and_train_sample(project: Project):
    run_id = project.first_run
    _visualdl_lists(project, run_id)
    points = sees_scalar_chart(project.url, run_id, "Loss/Train", ARTIFACTS / "compose_visualdl_loss_train.png")
    assert [int(p[1]) for p in points] == [1, 2, 3]
    images = sees_image(project.url, run_id, "Train/Sample", ARTIFACTS / "compose_visualdl_train_sample.png")
    assert [int(i["step"]) for i in images] == [1, 2, 3]


def _names(text: str, run_id: str) -> int:
    """How often ``text`` names the run ``run_id`` itself: two runs started in the same minute are
    logs_MMDDHHMM and logs_MMDDHHMM_2, and the first is a prefix of the second."""
    return len(re.findall(rf"(?<![\w]){re.escape(run_id)}(?![\w])", text))


def test_the_guides_own_commands_work_in_the_containers(project: Project):
    demo = project.docker("exec", project.trainer, "python", "train_demo.py", timeout=600)
    demo_dir = re.search(r"run folder: (/app/models/logs_\S+)", demo.stdout).group(1)
    assert "finished: 3 epochs" in demo.stdout, demo.stdout[-2000:]
    demo_run = demo_dir.rsplit("/", 1)[1]
    _visualdl_lists(project, demo_run)

    quick = project.exec("monitor", "python", "monitor_training.py")
    assert _names(quick.stdout, demo_run) and _names(quick.stdout, project.first_run), quick.stdout
    watching = project.exec("monitor", "timeout", "--preserve-status", "-s", "INT", "8",
                            "python", "monitor_training.py", "--monitor", "--interval", "2")
    assert _names(watching.stdout, demo_run) >= 2 and watching.stdout.rstrip().endswith("stopped"), watching
    one = project.exec("monitor", "python", "monitor_training.py", "--log_dir", demo_dir)
    assert _names(one.stdout, demo_run) and not _names(one.stdout, project.first_run), one.stdout
    assert "Traceback" not in quick.stderr + watching.stderr + one.stderr


# ---------------------------------------------------------------- faults


def test_a_killed_trainer_turns_status_red_then_its_run_resumes_by_itself(project: Project):
    sub = project.make("train", "--preset cpu-demo --synthetic 64 --epochs 6 --log-every-steps 1")
    run_id = _queued_run(sub)
    project.wait_run(run_id, lambda e: e["state"] == "running" and (e["epoch"] or 0) >= 2, 300,
                     "two epochs done (a checkpoint to resume from)")
    killed = time.monotonic()
    project.docker("kill", project.trainer)
    try:
        code, entry = project.wait_run(run_id, lambda e: e["level"] == "error", 60, "status to report it")
        seen_after = time.monotonic() - killed
        note_timing("docker kill -> make status non-zero", seen_after)
    finally:
        project.compose("up", "-d")  # the tests after this one need the trainer back, whatever happened
    assert code != 0 and entry["health"] in ("dead", "stalled"), entry
    assert seen_after <= 2 * MONITOR_INTERVAL + 3, f"{seen_after:.1f} s"  # +3: make status's own time
    project.wait_run(run_id, lambda e: e["state"] == "finished", 400, "the run to resume and finish")
    log = project.compose("logs", "--no-color", "trainer").stdout
    assert f"{run_id} was running when its trainer died" in log
    resumed = re.search(r"resumed from \S+ \(epoch (\d+), step (\d+)\)", log)
    assert resumed and int(resumed.group(1)) >= 2, log[-3000:]
    assert project.vdl_scalar_steps(run_id, "Loss/Train") == list(range(1, 7))
    per_step = project.vdl_scalar_steps(run_id, "Iter/Loss")
    assert per_step == sorted(set(per_step)) and per_step[-1] == 6 * 7, per_step[-10:]
    project.resumed_run = run_id


def test_a_redis_restart_mid_run_loses_neither_status_nor_queue(project: Project):
    long = project.make("train", "--preset cpu-demo --synthetic 64 --epochs 200")
    running = _queued_run(long)
    waiting = _queued_run(project.make("train", "--preset cpu-demo --synthetic 64 --epochs 1"))
    project.wait_run(running, lambda e: e["state"] == "running", 240, "running")
    project.compose("restart", "redis", timeout=120)
    project.wait_healthy(120)
    code, entry = project.wait_run(running, lambda e: e["state"] == "running" and e["level"] == "ok", 120,
                                   "status back after the restart")
    count = ("import os, redis, rq; print(rq.Queue('train', connection=redis.Redis.from_url("
             "os.environ['REDIS_URL'])).job_ids)")
    assert project.exec("trainer", "python", "-c", count).stdout.split() == [f"['{waiting}']"]
    run(["make", "--no-print-directory", "stop", f"RUN={running}"], project.env)
    project.wait_run(running, lambda e: e["state"] == "stopped", 180, "the long run to stop")
    project.wait_run(waiting, lambda e: e["state"] == "finished", 300, "the queued run to run after it")


# ---------------------------------------------------------------- security, from inside


def _uids(project: Project, service: str) -> set[str]:
    script = "for s in /proc/[0-9]*/status; do awk '/^Uid:/{print $2}' $s 2>/dev/null; done"
    return set(project.exec(service, "sh", "-c", script).stdout.split())


def test_roles_run_as_10001_redis_wants_its_password_mounts_are_read_only(project: Project):
    for service in ("trainer", "monitor", "visualdl"):
        assert _uids(project, service) == {"10001"}, service
    probe = "import redis, sys; redis.Redis(host='redis', password=sys.argv[1] or None).ping()"
    refused = project.exec("monitor", "python", "-c", probe, "", check=False)
    assert refused.returncode != 0 and "redis.exceptions.AuthenticationError" in refused.stderr, refused.stderr[-500:]
    assert project.exec("monitor", "python", "-c", probe, project.password).returncode == 0
    for service in ("visualdl", "monitor"):
        write = project.exec(service, "touch", "/app/models/written-from-" + service, check=False)
        assert write.returncode != 0 and "Read-only file system" in write.stderr, (service, write.stderr)
    assert project.exec("trainer", "touch", "/app/models/.trainer-can-write").returncode == 0


def test_visualdl_makes_no_outbound_connection_at_start(project: Project):
    """A recorder posing as the HTTPS proxy sees the telemetry call VisualDL makes without
    --disable-telemetry, and none from the stack's VisualDL command."""
    network = f"{project.name}_default"
    image = project.docker("inspect", "--format", "{{.Config.Image}}", project.container("visualdl")).stdout.strip()
    recorder = f"{project.name}-proxy-recorder"
    listen = ("import socket\ns = socket.create_server(('0.0.0.0', 3128))\nwhile True:\n"
              "    c, _ = s.accept(); print(c.recv(200).split(b'\\r\\n')[0].decode(), flush=True); c.close()\n")
    project.docker("run", "-d", "--rm", "--name", recorder, "--network", network, image, "python", "-c", listen)
    bare = ["visualdl", "--logdir", "/app/models", "--host", "0.0.0.0", "--port", "8040", "-L", "en"]
    try:
        for name, cmd in (("with-telemetry", bare), ("stack-command", ["seghw", "serve", "visualdl"])):
            project.docker("run", "-d", "--rm", "--name", f"{project.name}-{name}", "--network", network,
                           "-e", f"HTTPS_PROXY=http://{recorder}:3128", "-e", f"HTTP_PROXY=http://{recorder}:3128",
                           "-e", "NO_PROXY=127.0.0.1,localhost,0.0.0.0",  # its own start-up probe of /alive
                           image, *cmd)
            wait_until(lambda n=name: project.docker("exec", f"{project.name}-{n}", *ALIVE, check=False).returncode
                       == 0, 90, what=f"the {name} VisualDL to answer")
            time.sleep(5)  # the telemetry thread starts with the server
            seen = project.docker("logs", recorder).stdout
            if name == "with-telemetry":
                assert "paddlepaddle.org.cn" in seen, seen  # the recorder does see the call
                before = seen
            else:
                assert seen == before, f"the stack's VisualDL connected out: {seen[len(before):]}"
            project.docker("rm", "-f", f"{project.name}-{name}")
    finally:
        project.docker("rm", "-f", recorder, check=False)


def _extra_ca_lines() -> list[str]:
    """A line of each certificate the host trusts that Debian's own bundle does not carry (the
    TLS-intercepting proxy's): what must not end up in an image."""
    debian = Path("/usr/share/ca-certificates")
    if not SYSTEM_CA.is_file():
        return []
    known = {line for crt in debian.rglob("*.crt") for line in crt.read_text(errors="replace").splitlines()}
    return [line for line in SYSTEM_CA.read_text().splitlines()
            if len(line) == 64 and line not in known][:3]


def test_the_build_ca_is_in_no_image(project: Project):
    lines = _extra_ca_lines()
    assert lines or not SYSTEM_CA.is_file(), "the host bundle adds nothing to Debian's: nothing to look for"
    images = [project.docker("inspect", "--format", "{{.Config.Image}}", project.container(service)).stdout.strip()
              for service in ("trainer", "visualdl", "monitor")]
    # One archive of the three images: every layer of each, the layers they share once.
    save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE, env=project.env)
    found = subprocess.run(["grep", "-c", "-F", *sum((["-e", ln] for ln in lines), [])], stdin=save.stdout,
                           capture_output=True, text=True, check=False)
    save.stdout.close()
    assert save.wait() == 0
    assert found.stdout.strip() == "0", f"an image of {images} carries the build CA"
    for service in ("trainer", "visualdl", "monitor"):
        secrets_dir = project.exec(service, "ls", "/run/secrets", check=False)
        assert secrets_dir.returncode != 0 or not secrets_dir.stdout.strip(), secrets_dir.stdout


def _published(project: Project, service: str) -> list[str]:
    ports = project.docker("inspect", "--format", "{{json .NetworkSettings.Ports}}", project.container(service))
    bindings = json.loads(ports.stdout) or {}
    return sorted(f"{b['HostIp']}:{b['HostPort']}" for spec in bindings.values() for b in (spec or []))


def _get(url: str, auth: tuple[str, str] | None = None, **headers: str) -> tuple[int, dict, bytes]:
    import base64

    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_visualdl_is_published_only_through_the_proxy_and_a_password_opens_it(project: Project):
    # Without a password: the proxy's port on this machine only; VisualDL itself published nowhere.
    assert _published(project, "proxy") == [f"127.0.0.1:{project.visualdl_port}"]
    assert _published(project, "visualdl") == []
    # The resumed run's per-step curve: a body above nginx's gzip threshold (512 bytes).
    status, headers, body = _get(project.url + f"/app/api/scalar/list?run={project.resumed_run}&tag=Iter%2FLoss",
                                 **{"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("Content-Encoding") == "gzip" and headers.get("Server", "").startswith("nginx")
    assert _get(project.url + "/proxy/health")[:1] == (200,)
    shown = project.make("status", check=False)
    assert "proxy: healthy (VisualDL answers behind it)" in shown.stderr, shown.stderr

    # With one (make up hashes it): the port open to the network, and only the password gets in.
    password = "a-long-password-" + project.password[:8]
    opened = {**project.env, "VISUALDL_PASSWORD": password, "VISUALDL_HOST": "0.0.0.0"}
    run(["make", "--no-print-directory", "up"], opened, timeout=900)
    project.wait_healthy()
    assert _published(project, "proxy") == [f"0.0.0.0:{project.visualdl_port}"]
    api = project.url + "/app/api/runs"
    assert _get(api)[0] == 401 and _get(api, ("visualdl", "wrong"))[0] == 401
    status, _, body = _get(api, ("visualdl", password))
    assert status == 200 and project.first_run in body.decode()
    environment = project.docker("inspect", "--format", "{{json .Config.Env}}", project.container("proxy")).stdout
    assert password not in environment and "VISUALDL_PASSWORD_HASH=$6$" in environment
    assert password not in project.compose("logs", "--no-color", "proxy").stdout
    shown = run(["make", "--no-print-directory", "status"], opened, check=False)
    assert "password required (user visualdl)" in shown.stderr, shown.stderr

    project.compose("up", "-d")  # back to this machine only, without a password, for the tests below
    project.wait_healthy()
    assert _get(project.url + "/app/api/runs")[0] == 200


# ---------------------------------------------------------------- down and up


def test_down_keeps_the_runs_and_down_v_removes_them(project: Project):
    project.compose("down", "--timeout", "60", timeout=300)
    assert project.compose("ps", "-aq").stdout.strip() == ""
    volumes = project.docker("volume", "ls", "--format", "{{.Name}}").stdout.split()
    assert f"{project.name}_models" in volumes
    project.compose("up", "-d", timeout=600)
    project.wait_healthy()
    _visualdl_lists(project, project.first_run)
    assert project.vdl_scalar_steps(project.resumed_run, "Loss/Train") == list(range(1, 7))
    project.compose("down", "-v", "--timeout", "60", timeout=300)
    volumes = project.docker("volume", "ls", "--format", "{{.Name}}").stdout.split()
    assert not [v for v in volumes if v.startswith(project.name + "_")], volumes
    left = project.docker("ps", "-a", "--filter", f"label=com.docker.compose.project={project.name}", "-q")
    assert left.stdout.strip() == ""


# ---------------------------------------------------------------- the GPU file, and bad settings


def test_the_gpu_file_parses_and_its_trainer_builds_on_a_paddle_base(project: Project):
    env = {**project.env, "COMPOSE_FILE": "docker-compose.yml" + (
        ":compose.build-ca.yml" if "BUILD_CA_BUNDLE" in project.env else "")}
    paddle = env.get("PADDLE_IMAGE") or ""
    assert paddle.startswith("seghandwriting-base/paddle"), "the GPU trainer is built on the Paddle stand-in"
    run(["docker", "compose", "config", "-q"], env)
    t0 = time.monotonic()
    run(["docker", "compose", "build", "trainer"], env, timeout=900)
    note_timing("GPU trainer on the Paddle stand-in: build", time.monotonic() - t0)
    tag = f"seghandwriting-trainer:{env['SEGHW_IMAGE_TAG']}"
    checked = run(["docker", "run", "--rm", tag, "python3", "-c",
                   "import os, paddle, seghw; print(os.getuid(), paddle.__version__)"], env)
    assert checked.stdout.split() == ["10001", "3.3.1"], checked.stdout


@pytest.fixture(scope="module")
def project_copy(project: Project, tmp_path_factory) -> Path:
    """The project's files in a folder of their own: `make up` there writes no .env into the checkout,
    and its builds miss the cache (its README differs), so their pip steps really run."""
    copy = tmp_path_factory.mktemp("project")
    for name in run(["git", "ls-files"], project.env).stdout.split():
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    (copy / "README.md").write_text((copy / "README.md").read_text() + f"\n<!-- {time.time()} -->\n")
    (copy / ".env").write_text("REDIS_PASSWORD=\n")
    yield copy
    env = {**project.env, "COMPOSE_PROJECT_NAME": project.name + "bad"}
    subprocess.run(["docker", "compose", "down", "-v"], cwd=copy, env=env, capture_output=True, check=False)


def _seghw_up(project: Project, cwd: Path, **settings: str | None) -> subprocess.CompletedProcess:
    env = {**project.env, "COMPOSE_PROJECT_NAME": project.name + "bad"}
    for key, value in settings.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    seghw = str(Path(sys.executable).parent / "seghw")
    return subprocess.run([seghw, "stack", "up"], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)


def _one_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("seghw: error:")]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return lines[0]


def _behind_an_intercepting_proxy() -> bool:
    import certifi

    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=20,
                               context=ssl.create_default_context(cafile=certifi.where())).close()
        return False
    except (urllib.error.URLError, ssl.SSLError) as exc:
        return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def test_bad_settings_are_one_line_naming_the_setting(project: Project, project_copy: Path):
    assert "REDIS_PASSWORD" in _one_line(_seghw_up(project, project_copy, REDIS_PASSWORD=None))
    line = _one_line(_seghw_up(project, project_copy, PYTHON_IMAGE="seghandwriting-base/python:no-such-tag"))
    assert "PYTHON_IMAGE" in line and "make base-images" in line
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert "VISUALDL_PORT" in _one_line(_seghw_up(project, project_copy, VISUALDL_PORT=port))
    line = _one_line(_seghw_up(project, project_copy, VISUALDL_HOST="0.0.0.0"))
    assert "VISUALDL_PASSWORD" in line and "VISUALDL_HOST" in line
    line = _one_line(_seghw_up(project, project_copy, PROXY_TLS_CERT="/nonexistent/cert.pem",
                               PROXY_TLS_KEY="/nonexistent/key.pem"))
    assert "PROXY_TLS_CERT=/nonexistent/cert.pem" in line
    no_engine = _seghw_up(project, project_copy, DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert "no Docker engine answers" in _one_line(no_engine) and "DOCKER_HOST" in no_engine.stderr

    # Without the CA bundle, the builds (their pip steps not in the cache) cannot reach PyPI here.
    built = _seghw_up(project, project_copy, BUILD_CA_BUNDLE=None, VISUALDL_PORT=str(free_port()),
                      COMPOSE_FILE="compose.cpu.yml:tests/compose.fast-checks.yml")
    if _behind_an_intercepting_proxy():
        line = _one_line(built)
        assert "BUILD_CA_BUNDLE" in line and "CERTIFICATE_VERIFY_FAILED" in line
    else:
        assert built.returncode == 0, built.stderr[-2000:]


def test_a_change_to_the_code_reinstalls_the_project_not_its_dependencies(project: Project, project_copy: Path):
    # After `git pull`, `docker compose up --build` must not download and install every library again.
    init = project_copy / "shared" / "seghw" / "__init__.py"
    init.write_text(init.read_text() + f"\n# {time.time()}\n")
    env = {**project.env, "COMPOSE_PROJECT_NAME": project.name + "bad"}
    t0 = time.monotonic()
    built = subprocess.run(["docker", "compose", "--progress", "plain", "build", "monitor"], cwd=project_copy,
                           env=env, capture_output=True, text=True, timeout=900)
    note_timing("monitor image after a code change: build", time.monotonic() - t0)
    log = built.stdout + built.stderr
    assert built.returncode == 0, log[-3000:]

    def step(command: str) -> str:
        found = re.search(rf"(?m)^#(\d+) \[[^\]]*\] RUN .*{re.escape(command)}", log)
        assert found, f"no build step running {command!r}:\n{log[-3000:]}"
        return "cached" if re.search(rf"(?m)^#{found.group(1)} CACHED$", log) else "ran"

    assert step("pip install --no-cache-dir /tmp/seghw-deps") == "cached"
    assert step("pip install --no-cache-dir --no-deps /tmp/seghw-src") == "ran"
