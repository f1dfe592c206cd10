"""``seghw serve proxy``: nginx in front of VisualDL, which has no authentication of its own.

The role renders nginx's configuration from the settings into a private runtime folder
(``SEGHW_PROXY_DIR``, default ``<stack dir>/proxy``), writes the password there only as a salted
SHA-512 crypt hash, checks the configuration with ``nginx -t`` and then ``exec``s nginx in the
foreground: the server takes this process's pid, so the stop signals reach it directly.

What nginx adds in front of VisualDL: HTTP basic auth (a wrong or missing password gets nginx's
401, never a VisualDL page), gzip of the JSON API and of the UI's files, a week of browser cache
for VisualDL's static files (it sends no cache header at all), a request body limit, optional TLS
(HTTP/2 with it), and ``GET /proxy/health``: ``up`` when VisualDL's ``/alive`` answers behind it.

Nothing listens beyond loopback without a password: with ``VISUALDL_PASSWORD`` empty the proxy
serves only a loopback address (gzip and caching, no auth), else it refuses to start.
"""

from __future__ import annotations

import grp
import ipaddress
import os
import pwd
import re
import secrets
import shutil
import ssl
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from seghw.stack.settings import (
    DEFAULT_PROXY_HOST,
    DEFAULT_PROXY_MAX_BODY,
    DEFAULT_VISUALDL_PORT,
    DEFAULT_VISUALDL_UPSTREAM,
    DEFAULT_VISUALDL_USER,
    StackError,
    browse_host,
    env_port_value,
    is_loopback,
    proxy_dir,
)

TEMPLATE = Path(__file__).with_name("nginx.conf.in")
HEALTH_PATH = "/proxy/health"
# crypt(3) salt alphabet; 16 characters is the most SHA-512 crypt uses.
SALT_CHARS = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# A crypt(3) hash as nginx's auth_basic_user_file reads it: $6$ (SHA-512), $5$, $y$, $2b$, $apr1$...
HASH_RE = re.compile(r"^\$[0-9a-z]+\$[./0-9A-Za-z$=,]+$")
SIZE_RE = re.compile(r"^[0-9]+[kKmM]?$")


@dataclass(frozen=True)
class ProxySettings:
    user: str
    password_hash: str | None  # None: no authentication (loopback only)
    upstream_host: str
    upstream_port: int
    host: str
    port: int
    tls_cert: Path | None
    tls_key: Path | None
    max_body: str
    directory: Path

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def upstream(self) -> str:
        return f"{_bracket(self.upstream_host)}:{self.upstream_port}"

    @property
    def url(self) -> str:
        """Where a client on this machine reaches the proxy."""
        return f"{'https' if self.tls else 'http'}://{_bracket(browse_host(self.host))}:{self.port}"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _upstream(raw: str) -> tuple[str, int]:
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\s/\[\]]+):(\d+)", raw.strip())
    if not m:
        raise StackError(f"VISUALDL_UPSTREAM={raw!r} is not HOST:PORT (e.g. visualdl:8040 or 127.0.0.1:18040)")
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    return host, env_port_value(port, "VISUALDL_UPSTREAM", DEFAULT_VISUALDL_PORT)


def _tls_file(env: Mapping[str, str], name: str) -> Path:
    path = Path(env[name].strip())
    if not path.exists():
        raise StackError(f"{name}={path}: no such file (mount the certificate and its key, or unset "
                         "PROXY_TLS_CERT and PROXY_TLS_KEY for plain HTTP)")
    if not path.is_file():
        raise StackError(f"{name}={path} is not a file")
    if not os.access(path, os.R_OK):
        raise StackError(f"{name}={path} cannot be read by uid {os.geteuid()} (the proxy's user)")
    return path.absolute()


def settings_from_env(env: Mapping[str, str] | None = None) -> ProxySettings:
    """The proxy's settings; bad input is a StackError of one line naming the setting."""
    env = os.environ if env is None else env

    def get(name: str, default: str = "") -> str:
        return (env.get(name) or "").strip() or default

    user = get("VISUALDL_USER", DEFAULT_VISUALDL_USER)
    if re.search(r"[:\s]", user):
        raise StackError(f"VISUALDL_USER={user!r} cannot hold a colon or spaces")
    password = env.get("VISUALDL_PASSWORD") or ""
    given_hash = get("VISUALDL_PASSWORD_HASH")
    if password and given_hash:
        raise StackError("VISUALDL_PASSWORD and VISUALDL_PASSWORD_HASH are both set: keep one")
    if given_hash and not HASH_RE.match(given_hash):
        raise StackError("VISUALDL_PASSWORD_HASH is not a crypt hash (make one with: openssl passwd -6)")
    if "\0" in password:
        raise StackError("VISUALDL_PASSWORD holds a NUL character")

    host = get("PROXY_HOST", DEFAULT_PROXY_HOST)
    port = env_port_value(get("PROXY_PORT"), "PROXY_PORT", DEFAULT_VISUALDL_PORT)
    # In a container the proxy listens on all of the container's addresses; who reaches it is decided
    # by the host's port binding, which the compose file passes on as PROXY_PUBLISHED_HOST.
    reachable_on = get("PROXY_PUBLISHED_HOST") or host
    if not (password or given_hash) and not is_loopback(reachable_on):
        where = "PROXY_PUBLISHED_HOST (VISUALDL_HOST in .env)" if get("PROXY_PUBLISHED_HOST") else "PROXY_HOST"
        raise StackError(f"VISUALDL_PASSWORD is not set: the proxy on {_bracket(reachable_on)}:{port} ({where}) "
                         "would show the training pages to anyone who reaches it; set VISUALDL_PASSWORD")
    upstream_host, upstream_port = _upstream(get("VISUALDL_UPSTREAM", DEFAULT_VISUALDL_UPSTREAM))
    same_host = upstream_host in (host, browse_host(host)) or (host in ("0.0.0.0", "::") and is_loopback(upstream_host))
    if upstream_port == port and same_host:
        raise StackError(f"VISUALDL_UPSTREAM={upstream_host}:{upstream_port} is the proxy's own address "
                         "(PROXY_HOST, PROXY_PORT): point it at VisualDL")

    cert_set, key_set = bool(get("PROXY_TLS_CERT")), bool(get("PROXY_TLS_KEY"))
    if cert_set != key_set:
        given, missing = ("PROXY_TLS_CERT", "PROXY_TLS_KEY") if cert_set else ("PROXY_TLS_KEY", "PROXY_TLS_CERT")
        raise StackError(f"{given} is set but {missing} is not: TLS needs both (the certificate and its key)")
    cert = _tls_file(env, "PROXY_TLS_CERT") if cert_set else None
    key = _tls_file(env, "PROXY_TLS_KEY") if key_set else None

    max_body = get("PROXY_MAX_BODY", DEFAULT_PROXY_MAX_BODY)
    if not SIZE_RE.match(max_body):
        raise StackError(f"PROXY_MAX_BODY={max_body!r} is not a size (e.g. 8m, 512k)")
    explicit_dir = get("SEGHW_PROXY_DIR")
    directory = Path(explicit_dir).absolute() if explicit_dir else proxy_dir()
    return ProxySettings(
        user=user,
        password_hash=given_hash or (hash_password(password) if password else None),
        upstream_host=upstream_host, upstream_port=upstream_port,
        host=host, port=port, tls_cert=cert, tls_key=key, max_body=max_body, directory=directory,
    )


# ---------------------------------------------------------------- the password


def _libcrypt():
    """The system's crypt(3), the library nginx checks the password with."""
    import ctypes
    import ctypes.util

    for name in ("libcrypt.so.1", ctypes.util.find_library("crypt")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.crypt.restype = ctypes.c_char_p
        lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        return lib
    raise StackError("no libcrypt on this system: the proxy cannot hash VISUALDL_PASSWORD (apt-get install libcrypt1)")


def hash_password(password: str, salt_from: str | None = None) -> str:
    """A salted SHA-512 crypt hash (``$6$``, 5000 rounds), as ``openssl passwd -6`` makes.

    nginx runs crypt() on every request it authenticates (it caches nothing), so the hash is one
    that costs about a millisecond: bcrypt or yescrypt at their usual costs would add 50-100 ms of
    CPU to each of the page's 200 requests. The salt is random, or drawn from ``salt_from`` and the
    password when the same hash must come out every time (compose would otherwise see a new
    setting, and recreate the proxy's container, at every ``make up``)."""
    if salt_from is None:
        chars = [secrets.choice(SALT_CHARS) for _ in range(16)]
    else:
        import hashlib

        digest = hashlib.sha256(f"{salt_from}\0{password}".encode()).digest()
        chars = [SALT_CHARS[b % len(SALT_CHARS)] for b in digest[:16]]
    salt = "$6$" + "".join(chars)
    out = _libcrypt().crypt(password.encode("utf-8"), salt.encode("ascii"))
    if not out or not out.decode("ascii", "replace").startswith(salt + "$"):
        raise StackError("this system's crypt() cannot make SHA-512 hashes for VISUALDL_PASSWORD")
    return out.decode("ascii")


# ---------------------------------------------------------------- the configuration


def nginx_binary() -> str:
    # /usr/sbin is not on a normal user's PATH on Debian.
    found = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"]))
    if not found:
        raise StackError("nginx is not installed: the proxy role needs it (apt-get install nginx)")
    return found


def _nameservers(path: Path = Path("/etc/resolv.conf")) -> list[str]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    found = [line.split()[1] for line in lines if line.startswith("nameserver") and len(line.split()) > 1]
    return [_bracket(ns) for ns in found]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _upstream_lines(s: ProxySettings) -> tuple[str, str, str]:
    """(resolver, the ``set`` of the upstream, what ``proxy_pass`` names).

    A name such as compose's ``visualdl`` goes through a variable and the container's resolver, so
    nginx starts before VisualDL does and follows it when it comes back at another address; nginx's
    resolver reads no /etc/hosts, so without a nameserver the name is resolved once, at start."""
    target = f"http://{s.upstream}"
    if _is_ip(s.upstream_host):
        return "", f"        set $visualdl {target};", "$visualdl"
    servers = _nameservers()
    if s.upstream_host == "localhost" or not servers:
        return "", "", target
    resolver = f"    resolver {' '.join(servers)} valid=10s ipv6=off;\n    resolver_timeout 3s;\n"
    return resolver, f"        set $visualdl {target};", "$visualdl"


def _worker_user(directory: Path) -> tuple[str, int | None] | None:
    """(the ``user`` directive, the group that must read the hash) when started as root.

    As any other user (uid 10001 in the containers) every nginx process runs as that user and no
    directive is needed. Started as root (a local stack run by root), the workers drop to nobody,
    who must reach the runtime folder: they read the hash there on every request. Under a private
    folder (a home such as /root, mode 0700) they cannot, and stay root like the stack's other roles."""
    if os.geteuid() != 0:
        return None
    if not all(os.stat(parent).st_mode & stat.S_IXOTH for parent in directory.parents):
        return "user root root;", None
    nobody = pwd.getpwnam("nobody")
    return f"user nobody {grp.getgrgid(nobody.pw_gid).gr_name};", nobody.pw_gid


def render(s: ProxySettings) -> str:
    resolver, upstream_var, target = _upstream_lines(s)
    worker = _worker_user(s.directory)
    listen = f"{_bracket(s.host)}:{s.port}" + (" ssl http2" if s.tls else "")
    if s.host == "::":  # every address, IPv4 too, as 0.0.0.0 would be
        listen += " ipv6only=off"
    tls = ""
    if s.tls:
        tls = (f"        ssl_certificate {s.tls_cert};\n"
               f"        ssl_certificate_key {s.tls_key};\n"
               "        ssl_protocols TLSv1.2 TLSv1.3;\n"
               "        ssl_session_cache shared:tls:1m;")
    auth = ""
    if s.password_hash:
        auth = f'        auth_basic "VisualDL";\n        auth_basic_user_file {s.directory / "htpasswd"};'
    values = {
        "@DIR@": str(s.directory), "@USER@": worker[0] if worker else "", "@MAX_BODY@": s.max_body,
        "@RESOLVER@": resolver, "@LISTEN@": listen, "@TLS@": tls, "@AUTH@": auth,
        "@UPSTREAM_VAR@": upstream_var, "@PASS@": target,
    }
    text = TEMPLATE.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def _write(path: Path, text: str, mode: int, group: int | None) -> None:
    """Written to a temp file created with its final mode, then renamed into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    if group is not None:
        os.chown(tmp, -1, group)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def prepare(s: ProxySettings) -> Path:
    """Write the runtime folder: nginx.conf, htpasswd (the hash only), the health body; return the
    configuration's path."""
    (s.directory / "tmp").mkdir(parents=True, exist_ok=True)
    worker = _worker_user(s.directory)
    # Private to the proxy's user; as root, nginx's workers (group nobody) must read the hash.
    group = worker[1] if worker else None
    dir_mode, secret_mode = (0o750, 0o640) if group is not None else (0o700, 0o600)
    for d in (s.directory, s.directory / "tmp"):
        if group is not None:
            os.chown(d, -1, group)
        os.chmod(d, dir_mode)
    htpasswd = s.directory / "htpasswd"
    if s.password_hash:
        _write(htpasswd, f"{s.user}:{s.password_hash}\n", secret_mode, group)
    else:
        htpasswd.unlink(missing_ok=True)
    _write(s.directory / "health-up.txt", "up\n", 0o644, None)
    conf = s.directory / "nginx.conf"
    _write(conf, render(s), 0o644, None)
    return conf


def server_command(conf: Path) -> list[str]:
    return [nginx_binary(), "-c", str(conf), "-p", str(conf.parent), "-e", "stderr"]


def _server_env() -> dict[str, str]:
    """nginx needs nothing from the environment: it gets none of the stack's secrets."""
    return {k: os.environ[k] for k in ("PATH", "TZ", "LANG") if k in os.environ}


def test_config(s: ProxySettings, conf: Path) -> None:
    """``nginx -t``; its objection as one line naming the setting it concerns."""
    done = subprocess.run([*server_command(conf), "-t", "-q"], capture_output=True, text=True,
                          env=_server_env(), check=False, timeout=60)
    if done.returncode == 0:
        return
    lines = [line for line in done.stderr.splitlines() if "[emerg]" in line] or done.stderr.strip().splitlines()
    why = re.sub(r"^.*?\[emerg\] \d+#\d+: ", "", lines[-1] if lines else f"exit {done.returncode}")
    setting = None
    if s.tls_key and ("certificate key" in why or "PrivateKey" in why or "private key" in why):
        setting = f"PROXY_TLS_KEY={s.tls_key}"
    elif s.tls_cert and "certificate" in why:
        setting = f"PROXY_TLS_CERT={s.tls_cert}"
    if setting:
        raise StackError(f"{setting}: nginx cannot use it ({why})")
    raise StackError(f"nginx rejects the proxy's configuration {conf}: {why}")


def serve(s: ProxySettings) -> None:
    """Prepare the runtime folder and become nginx."""
    from seghw.stack.local import ensure_free

    nginx = nginx_binary()
    conf = prepare(s)
    test_config(s, conf)
    ensure_free(s.host, s.port, "PROXY_PORT", "PROXY_HOST")
    auth = (f"password required (user {s.user}; only its hash is kept, in {s.directory / 'htpasswd'})"
            if s.password_hash else "no password (loopback only)")
    print(f"seghw proxy: nginx on {s.url} in front of VisualDL at {s.upstream}; {auth}; "
          f"{'TLS; ' if s.tls else ''}request body limit {s.max_body}; health {s.url}{HEALTH_PATH}", flush=True)
    sys.stderr.flush()
    os.execve(nginx, server_command(conf), _server_env())


# ---------------------------------------------------------------- health


def _opener(url: str):
    # The check talks to its own proxy on this machine: the certificate names the public host.
    context = ssl._create_unverified_context() if url.startswith("https") else None  # noqa: S323
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context),
                                       _NoRedirect())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _get(url: str, timeout: float) -> tuple[int, bytes]:
    try:
        with _opener(url).open(url, timeout=timeout) as resp:
            return resp.status, resp.read(64)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(64)


def health(url: str, timeout: float = 5.0) -> tuple[str, str]:
    """(``up`` | ``down`` | ``no answer``, detail) from the proxy's health endpoint at ``url``."""
    try:
        status, body = _get(url + HEALTH_PATH, timeout)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return "no answer", str(getattr(reason, "strerror", None) or reason)
    if status == 200 and body.strip() == b"up":
        return "up", ""
    if status == 503 and body.strip() == b"down":
        return "down", ""
    return "no answer", f"HTTP {status} on {HEALTH_PATH}, not the proxy's health endpoint"


def check(s: ProxySettings, timeout: float = 5.0) -> tuple[bool, str]:
    """The container health check: the proxy answers, VisualDL answers behind it, and with a
    password set a request without one is refused."""
    state, detail = health(s.url, timeout)
    if state == "no answer":
        return False, f"the proxy does not answer on {s.url}: {detail}"
    if state == "down":
        return False, f"the proxy on {s.url} answers, but VisualDL behind it ({s.upstream}) does not"
    if s.password_hash:
        try:
            status, _ = _get(s.url + "/app", timeout)
        except (urllib.error.URLError, OSError) as exc:
            return False, f"the proxy on {s.url} stopped answering: {exc}"
        if status != 401:
            return False, f"the proxy on {s.url} answers /app with HTTP {status} without a password (expected 401)"
    auth = "password required" if s.password_hash else "no password, loopback only"
    return True, f"the proxy on {s.url} answers ({auth}); VisualDL behind it ({s.upstream}) answers"
