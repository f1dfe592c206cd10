"""The password proxy in front of VisualDL (``seghw serve proxy``): real nginx, a real VisualDL over
records written by the trainer's own VisualDL logger, a real headless Chromium, and the local stack
through the real ``seghw stack up``."""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from browser_helpers import sees_scalar_chart
from stack_helpers import SEGHW, LocalStack, alive, cmdline, free_port, port_free, wait_until
from trainer_helpers import epoch_result, start_logger

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
RUN = "logs_12010900"
EPOCHS = 50
# A space, a colon and a non-ASCII letter: what naive handling of a password breaks on.
PASSWORD = "Tr0ub4dor&3 x:y-é"
USER = "visualdl"


# ---------------------------------------------------------------- real parts


@pytest.fixture(scope="module")
def visualdl(tmp_path_factory):
    """VisualDL (the stack's own role) over one run of 50 epochs, written by the trainer's logger."""
    root = tmp_path_factory.mktemp("proxy") / "models"
    root.mkdir()
    state, logger = start_logger(root, RUN)
    for epoch in range(1, EPOCHS + 1):
        state.epoch = epoch
        logger.on_epoch_end(state, epoch_result(train_loss=1.0 / epoch, val_loss=1.2 / epoch))
    logger.on_train_end(state)
    port = free_port()
    log = open(root.parent / "visualdl.log", "wb")  # noqa: SIM115 (kept open for the child)
    proc = subprocess.Popen([SEGHW, "serve", "visualdl"], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "SEGHW_LOG_ROOT": str(root), "VISUALDL_HOST": "127.0.0.1",
                                 "VISUALDL_PORT": str(port)})
    log.close()
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _get(url + "/alive")[0] == 204 or proc.poll() is not None, 120, what="VisualDL")
    assert proc.poll() is None, (root.parent / "visualdl.log").read_text()
    yield url
    proc.terminate()
    proc.wait(20)


def _get(url: str, auth: tuple[str, str] | None = None, headers: dict | None = None,
         data: bytes | None = None) -> tuple[int, dict, bytes]:
    """(status, headers, body); no redirects followed, the body as it came over the wire."""
    req = urllib.request.Request(url, data=data, headers=dict(headers or {}))
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ssl._create_unverified_context()),  # noqa: S323 (throwaway cert)
        type("NoRedirect", (urllib.request.HTTPRedirectHandler,), {"redirect_request": lambda *a, **k: None})())
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    except (urllib.error.URLError, OSError):
        return 0, {}, b""


class Proxy:
    """``seghw serve proxy`` as a child process with its own runtime folder and port."""

    def __init__(self, root: Path, upstream: str, **env: str):
        self.port = free_port()
        self.dir = Path(env.pop("SEGHW_PROXY_DIR", root / f"proxy-{self.port}"))
        self.log = root / f"proxy-{self.port}.log"
        self.env = {**os.environ, "VISUALDL_UPSTREAM": upstream, "PROXY_PORT": str(self.port),
                    "SEGHW_PROXY_DIR": str(self.dir), **env}
        for k in ("VISUALDL_PASSWORD", "VISUALDL_PASSWORD_HASH", "PROXY_HOST", "PROXY_PUBLISHED_HOST", "PROXY_TLS_CERT",
                  "PROXY_TLS_KEY"):
            if k not in env:
                self.env.pop(k, None)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.env.get('PROXY_TLS_CERT') else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> Proxy:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([SEGHW, "serve", "proxy"], stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env)
        wait_until(lambda: self.proc.poll() is not None or self.get("/proxy/health")[0] in (200, 503), 30,
                   every=0.1, what="the proxy")
        assert self.proc.poll() is None, self.log.read_text()
        return self

    def get(self, path: str, auth: tuple[str, str] | None = None, **kw) -> tuple[int, dict, bytes]:
        return _get(self.url + path, auth, **kw)

    def check(self) -> subprocess.CompletedProcess:
        return subprocess.run([SEGHW, "serve", "proxy", "--check"], capture_output=True, text=True, env=self.env,
                              timeout=60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


@pytest.fixture
def proxies(tmp_path, visualdl):
    """``proxies(**env)``: a started proxy in front of the module's VisualDL; stopped after the test."""
    started: list[Proxy] = []

    def make(upstream: str = visualdl.removeprefix("http://"), **env: str) -> Proxy:
        proxy = Proxy(tmp_path, upstream, **env)
        started.append(proxy)
        return proxy.start()

    yield make
    for proxy in started:
        proxy.stop()


def _one_line_error(proc: subprocess.CompletedProcess, *names: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------- the password


def test_only_the_right_password_reaches_visualdl_and_its_chart(proxies, visualdl):
    proxy = proxies(VISUALDL_PASSWORD=PASSWORD)
    wrong = [None, (USER, "wrong"), (USER, PASSWORD + "x"), (USER, PASSWORD[:-1]), ("someone", PASSWORD)]
    for path in ("/app/scalar", "/app/api/runs", "/app/_dist_/index.js", "/", "/alive"):
        for auth in wrong:
            status, headers, body = proxy.get(path, auth)
            assert status == 401, (path, auth, status)
            assert headers.get("WWW-Authenticate") == 'Basic realm="VisualDL"'
            assert b"VisualDL" not in body and b"scalar" not in body  # nginx's own page, nothing of VisualDL's
    status, _, page = proxy.get("/app/scalar", (USER, PASSWORD))
    assert status == 200 and b"<title>VisualDL</title>" in page
    runs = json.loads(proxy.get("/app/api/runs", (USER, PASSWORD))[2])["data"]
    assert runs == json.loads(_get(visualdl + "/app/api/runs")[2])["data"]

    # A real browser with the credentials draws the Loss/Train chart, one point per epoch.
    points = sees_scalar_chart(proxy.url, RUN, "Loss/Train", ARTIFACTS / "proxy_loss_train.png",
                               http_credentials={"username": USER, "password": PASSWORD})
    assert [int(p[1]) for p in points] == list(range(1, EPOCHS + 1))
    # ... and the wrong ones get the 401, not the page.
    from browser_helpers import browser_page

    with browser_page(http_credentials={"username": USER, "password": "wrong"}) as page:
        response = page.goto(proxy.url + "/app/scalar")
        assert response.status == 401
        assert "VisualDL" not in page.content()


@pytest.fixture
def open_folder():
    """A folder every user can traverse (pytest's temp folders are private, mode 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="seghw-proxy-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _server(proxy: Proxy) -> list[psutil.Process]:
    server = psutil.Process(proxy.proc.pid)  # the role became nginx (exec): same pid
    assert "nginx: master process" in " ".join(cmdline(server))
    return [server, *server.children(recursive=True)]


def test_the_password_is_kept_only_as_a_salted_hash(proxies, open_folder):
    proxy = proxies(VISUALDL_PASSWORD=PASSWORD, SEGHW_PROXY_DIR=str(open_folder / "run"))
    assert proxy.get("/app/scalar", (USER, PASSWORD))[0] == 200
    secret = PASSWORD.encode()
    files = [p for p in proxy.dir.rglob("*") if p.is_file()]
    assert files and not [p for p in files if secret in p.read_bytes()]
    line = (proxy.dir / "htpasswd").read_text()
    user, hashed = line.strip().split(":", 1)
    assert user == USER and hashed.startswith("$6$") and len(hashed.split("$")[2]) == 16  # SHA-512 crypt, 16-char salt
    mode = stat.S_IMODE((proxy.dir / "htpasswd").stat().st_mode)
    processes = _server(proxy)
    workers = {p.username() for p in processes[1:]}
    if os.geteuid() == 0:  # nginx's workers drop to nobody, who must read the hash (group nobody)
        assert workers == {"nobody"} and mode == 0o640, (workers, oct(mode))
        assert (proxy.dir / "htpasswd").stat().st_gid == psutil.Process(processes[1].pid).gids().real
    else:  # everything runs as the proxy's user, and the hash is its alone
        assert workers == {psutil.Process().username()} and mode == 0o600, (workers, oct(mode))
    # A second start salts again: the same password never gives the same line.
    again = proxies(VISUALDL_PASSWORD=PASSWORD)
    assert (again.dir / "htpasswd").read_text() != line
    # Under a private folder (as pytest's) the hash stays the user's own, and nginx still reads it.
    assert stat.S_IMODE((again.dir / "htpasswd").stat().st_mode) == 0o600
    assert again.get("/app/scalar", (USER, PASSWORD))[0] == 200

    # Not on any command line or in any environment of the server's processes, not in its log.
    assert len(processes) >= 2
    for p in processes:
        assert PASSWORD not in " ".join(cmdline(p))
        assert secret not in Path(f"/proc/{p.pid}/environ").read_bytes()
        assert "VISUALDL_PASSWORD" not in p.environ()
    proxy.get("/app/scalar", (USER, "wrong"))
    proxy.get("/app/scalar", (USER, PASSWORD))
    log = proxy.log.read_bytes()
    assert b"password mismatch" in log and secret not in log


# ---------------------------------------------------------------- what the proxy adds


def test_the_api_and_the_ui_files_come_gzipped_and_the_ui_files_cached(proxies, visualdl):
    proxy = proxies(VISUALDL_PASSWORD=PASSWORD)
    gz = {"Accept-Encoding": "gzip"}
    api = f"/app/api/scalar/list?run={RUN}&tag=Loss%2FTrain"
    status, headers, body = proxy.get(api, (USER, PASSWORD), headers=gz)
    assert status == 200 and headers.get("Content-Encoding") == "gzip", headers
    direct_status, direct_headers, direct = _get(visualdl + api, headers=gz)
    assert direct_status == 200 and "Content-Encoding" not in direct_headers  # VisualDL compresses nothing
    assert json.loads(gzip.decompress(body)) == json.loads(direct)
    assert len(body) < len(direct) / 2
    assert headers.get("Cache-Control") == "no-store"  # the curves and pictures stay out of caches

    for path in ("/app/_dist_/index.js", "/app/imported-styles.css", "/app/locales/en/common.json"):
        status, headers, body = proxy.get(path, (USER, PASSWORD), headers=gz)
        assert status == 200 and headers.get("Content-Encoding") == "gzip", (path, headers)
        assert headers.get("Cache-Control") == "private, max-age=604800", (path, headers)
        assert gzip.decompress(body) == _get(visualdl + path)[2]
        # The second time nginx answers from its own cache, not from VisualDL.
        assert proxy.get(path, (USER, PASSWORD))[1].get("X-Proxy-Cache") == "HIT"
    # A page is not a static file: no long cache.
    assert "max-age" not in proxy.get("/app/scalar", (USER, PASSWORD))[1].get("Cache-Control", "")


def test_the_request_body_limit(proxies):
    proxy = proxies(VISUALDL_PASSWORD=PASSWORD, PROXY_MAX_BODY="1m")
    assert proxy.get("/app/api/runs", (USER, PASSWORD), data=b"x" * 1000)[0] == 200
    assert proxy.get("/app/api/runs", (USER, PASSWORD), data=b"x" * (1024 * 1024 + 1))[0] == 413


def test_health_endpoint_and_check(proxies, tmp_path):
    proxy = proxies(VISUALDL_PASSWORD=PASSWORD)
    status, headers, body = proxy.get("/proxy/health")  # no password needed
    assert (status, body) == (200, b"up\n")
    done = proxy.check()
    assert done.returncode == 0 and "VisualDL behind it" in done.stdout and "answers" in done.stdout, done

    # VisualDL gone from behind it: "down", 503, and the check fails saying so.
    closed = free_port()
    orphan = proxies(upstream=f"127.0.0.1:{closed}", VISUALDL_PASSWORD=PASSWORD)
    status, _, body = orphan.get("/proxy/health")
    assert (status, body) == (503, b"down\n")
    done = orphan.check()
    assert done.returncode == 1 and "does not" in done.stdout and f"127.0.0.1:{closed}" in done.stdout, done
    assert len(done.stdout.strip().splitlines()) == 1
    assert orphan.get("/app/scalar", (USER, PASSWORD))[0] == 502

    # An upstream by name (compose's visualdl:8040) is resolved when asked, not at start: the proxy
    # comes up before the name resolves, and reports VisualDL down until it does.
    named = proxies(upstream="visualdl.invalid:8040", VISUALDL_PASSWORD=PASSWORD)
    assert "resolver " in (named.dir / "nginx.conf").read_text()
    assert named.get("/proxy/health")[:3:2] == (503, b"down\n")
    assert named.check().returncode == 1

    # No proxy at all.
    orphan.stop()
    done = orphan.check()
    assert done.returncode == 1 and "does not answer" in done.stdout, done


def test_tls_from_a_certificate_and_key(proxies, tmp_path, visualdl):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    key.chmod(0o600)
    proxy = proxies(VISUALDL_PASSWORD=PASSWORD, PROXY_TLS_CERT=str(cert), PROXY_TLS_KEY=str(key))
    assert proxy.url.startswith("https://")
    status, _, page = proxy.get("/app/scalar", (USER, PASSWORD))
    assert status == 200 and b"<title>VisualDL</title>" in page
    assert proxy.get("/app/scalar", (USER, "wrong"))[0] == 401
    # The certificate is the one given.
    with socket.create_connection(("127.0.0.1", proxy.port)) as raw:
        with ssl._create_unverified_context().wrap_socket(raw) as tls:  # noqa: S323
            served = ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True))
    assert served.strip() == cert.read_text().strip()
    # Plain HTTP on the TLS port gets nothing of VisualDL's.
    status, _, body = _get(f"http://127.0.0.1:{proxy.port}/app/scalar", (USER, PASSWORD))
    assert status == 400 and b"VisualDL" not in body
    done = proxy.check()
    assert done.returncode == 0 and "https://" in done.stdout, done


def _serve_proxy(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VISUALDL_", "PROXY_"))}
    return subprocess.run([SEGHW, "serve", "proxy"], capture_output=True, text=True, timeout=60,
                          env={**base, "SEGHW_PROXY_DIR": str(tmp_path / "run"), "PROXY_PORT": str(free_port()),
                               **env})


@pytest.mark.parametrize("env,names", [
    ({"PROXY_HOST": "0.0.0.0"}, ["VISUALDL_PASSWORD"]),
    ({"PROXY_HOST": "0.0.0.0", "PROXY_PUBLISHED_HOST": "0.0.0.0"}, ["VISUALDL_PASSWORD", "VISUALDL_HOST"]),
    ({"VISUALDL_PASSWORD": "pw", "PROXY_TLS_CERT": "/nonexistent/cert.pem", "PROXY_TLS_KEY": "/nonexistent/key.pem"},
     ["PROXY_TLS_CERT", "/nonexistent/cert.pem"]),
    ({"VISUALDL_PASSWORD": "pw", "PROXY_TLS_CERT": "@cert"}, ["PROXY_TLS_CERT", "PROXY_TLS_KEY"]),
    ({"VISUALDL_PASSWORD": "pw", "PROXY_TLS_CERT": "@cert", "PROXY_TLS_KEY": "/nonexistent/key.pem"},
     ["PROXY_TLS_KEY", "/nonexistent/key.pem"]),
    ({"VISUALDL_PASSWORD": "pw", "PROXY_TLS_CERT": "@text", "PROXY_TLS_KEY": "@text"}, ["PROXY_TLS_CERT"]),
    ({"VISUALDL_UPSTREAM": "visualdl"}, ["VISUALDL_UPSTREAM"]),
    ({"PROXY_PORT": "80000"}, ["PROXY_PORT"]),
    ({"PROXY_MAX_BODY": "lots"}, ["PROXY_MAX_BODY"]),
    ({"VISUALDL_USER": "a:b", "VISUALDL_PASSWORD": "pw"}, ["VISUALDL_USER"]),
    ({"VISUALDL_PASSWORD": "pw", "VISUALDL_PASSWORD_HASH": "$6$abc$def"}, ["VISUALDL_PASSWORD_HASH"]),
])
def test_bad_settings_are_one_line_naming_the_setting(env, names, tmp_path):
    text = tmp_path / "not-a-certificate.pem"
    text.write_text("hello\n")
    cert = tmp_path / "cert.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {k: {"@cert": str(cert), "@text": str(text)}.get(v, v) for k, v in env.items()}
    done = _serve_proxy(env, tmp_path)
    _one_line_error(done, *names)
    assert not (tmp_path / "run" / "nginx.pid").exists()


def test_a_hash_instead_of_the_password(proxies):
    """VISUALDL_PASSWORD_HASH (e.g. from openssl passwd -6) keeps even .env free of the password."""
    made = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=PASSWORD, capture_output=True, text=True,
                          check=True).stdout.strip()
    proxy = proxies(VISUALDL_PASSWORD_HASH=made)
    assert proxy.get("/app/scalar", (USER, PASSWORD))[0] == 200
    assert proxy.get("/app/scalar", (USER, "wrong"))[0] == 401


def test_without_a_password_only_loopback_and_no_auth(proxies):
    proxy = proxies()
    status, headers, _ = proxy.get(f"/app/api/scalar/list?run={RUN}&tag=Loss%2FTrain",
                                   headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("Content-Encoding") == "gzip"
    assert not (proxy.dir / "htpasswd").exists()


def test_in_a_container_published_on_loopback_it_may_listen_everywhere_without_a_password(proxies):
    """The compose file publishes the proxy's port on the host's 127.0.0.1 unless a password is set,
    and says so in PROXY_PUBLISHED_HOST; inside its container the proxy then listens on 0.0.0.0."""
    proxy = proxies(PROXY_HOST="0.0.0.0", PROXY_PUBLISHED_HOST="127.0.0.1")
    assert proxy.get("/proxy/health")[0] == 200


# ---------------------------------------------------------------- the local stack


def _listeners(port: int) -> dict[str, int]:
    """Address -> pid of every socket listening on ``port`` on this machine."""
    return {c.laddr.ip: c.pid for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


def _outside_address() -> str | None:
    """An address of this machine that is not loopback (what another machine would connect to)."""
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return None


@pytest.mark.slow
def test_local_stack_with_a_password_runs_visualdl_behind_the_proxy(tmp_path):
    stack = LocalStack(tmp_path, VISUALDL_PASSWORD=PASSWORD, VISUALDL_HOST="0.0.0.0")
    try:
        up = stack.seghw("stack", "up", check=True)
        assert f"VisualDL http://127.0.0.1:{stack.visualdl_port}, password required (user {USER})" in up.stdout
        assert "this machine only" not in up.stdout
        state = stack.state()
        internal = int(state["proxy"]["upstream"].rsplit(":", 1)[1])
        procs = stack.processes()
        pids = {p.pid for p in procs}

        # The published port is nginx's, on the address asked for; VisualDL is on loopback only.
        published = _listeners(stack.visualdl_port)
        assert set(published) == {"0.0.0.0"}, published
        assert "nginx" in " ".join(cmdline(psutil.Process(published["0.0.0.0"])))
        inside = _listeners(internal)
        assert set(inside) == {"127.0.0.1"} and inside["127.0.0.1"] in pids, inside
        assert "visualdl --logdir" in " ".join(cmdline(psutil.Process(inside["127.0.0.1"])))
        outside = _outside_address()
        if outside is not None:  # what another machine would try: VisualDL's own port refuses it
            with pytest.raises(OSError):
                socket.create_connection((outside, internal), timeout=5).close()
            assert _get(f"http://{outside}:{stack.visualdl_port}/app/scalar")[0] == 401

        # Through the published port: only with the password.
        url = f"http://127.0.0.1:{stack.visualdl_port}"
        assert _get(url + "/app/scalar")[0] == 401
        assert _get(url + "/app/scalar", (USER, "wrong"))[0] == 401
        status, _, page = _get(url + "/app/scalar", (USER, PASSWORD))
        assert status == 200 and b"<title>VisualDL</title>" in page

        # Status names the proxy and whether VisualDL answers behind it.
        status = stack.seghw("stack", "status")
        line = status.stderr.splitlines()[0]
        assert "proxy " in line and "DOWN" not in line and "VisualDL answers behind it" in line, status.stderr

        # The password is nowhere: files of the stack, command lines and environments, the log.
        secret = PASSWORD.encode()
        files = [p for p in stack.dir.rglob("*") if p.is_file()]
        assert not [p for p in files if secret in p.read_bytes()]
        for p in alive(procs):
            assert PASSWORD not in " ".join(cmdline(p))
            try:
                assert secret not in Path(f"/proc/{p.pid}/environ").read_bytes(), cmdline(p)
            except FileNotFoundError:
                pass

        down = stack.seghw("stack", "down", check=True)
        assert "stopped the local stack" in down.stdout
        assert alive(procs) == []
        assert port_free(stack.visualdl_port, "0.0.0.0") and port_free(internal)
    finally:
        stack.cleanup()


@pytest.mark.slow
def test_local_stack_opens_no_port_to_the_network_without_a_password(tmp_path):
    stack = LocalStack(tmp_path, VISUALDL_HOST="0.0.0.0")
    refused = stack.seghw("stack", "up")
    line = _one_line_error(refused, "VISUALDL_HOST=0.0.0.0", "VISUALDL_PASSWORD")
    assert str(stack.visualdl_port) in line
    assert not stack.state_file.exists()
    # A proxy setting that cannot work stops up before anything starts.
    bad = stack.seghw("stack", "up", env={"VISUALDL_PASSWORD": "pw", "PROXY_TLS_CERT": str(tmp_path / "no.pem"),
                                          "PROXY_TLS_KEY": str(tmp_path / "no.key")})
    _one_line_error(bad, "PROXY_TLS_CERT")
    assert not stack.state_file.exists()

    # On loopback, as before, with one line on how to open it safely.
    del stack.env["VISUALDL_HOST"]
    try:
        up = stack.seghw("stack", "up", check=True)
        hint = [line for line in up.stdout.splitlines() if "network" in line]
        assert len(hint) == 1 and "VISUALDL_PASSWORD" in hint[0] and "VISUALDL_HOST=0.0.0.0" in hint[0], up.stdout
        assert set(_listeners(stack.visualdl_port)) == {"127.0.0.1"}
        assert "proxy" not in stack.seghw("stack", "status").stderr.splitlines()[0]
    finally:
        stack.cleanup()
