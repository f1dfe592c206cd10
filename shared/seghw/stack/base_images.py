"""Stand-ins for the stack's base images, built from Debian packages (``make base-images``).

For machines that reach no image registry. Each is Debian bookworm, made by ``mmdebstrap`` and
``docker import`` (no registry involved), tagged under the project's name and never pushed:

  seghandwriting-base/python:3.11-bookworm   PYTHON_IMAGE   python, pip on PATH, pip installs allowed
  seghandwriting-base/redis:7-bookworm       REDIS_IMAGE    redis-server, redis-cli; runs as redis in /data
  seghandwriting-base/paddle:3.3.1-cpu       PADDLE_IMAGE   the Python stand-in with Paddle's CPU wheel, so
                                                            the GPU Dockerfile's own steps can be built

An image whose recipe has not changed is kept (the recipe's hash is a label), so a second run costs
seconds. The last lines printed are the settings to put in .env. Needs root, mmdebstrap and a Docker
engine (DOCKER_HOST); the Paddle stand-in needs PyPI (BUILD_CA_BUNDLE behind a TLS-intercepting proxy).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

SUITE = "bookworm"
LABEL = "org.seghandwriting.recipe"


@dataclass(frozen=True)
class Debootstrapped:
    """An image made from Debian packages with mmdebstrap, then ``docker import``."""

    tag: str
    setting: str
    packages: tuple[str, ...]
    hooks: tuple[str, ...]  # mmdebstrap --customize-hook commands ("$1" is the new root)
    changes: tuple[str, ...]  # docker import --change instructions

    def recipe(self) -> str:
        return repr((SUITE, self.packages, self.hooks, self.changes))


PYTHON = Debootstrapped(
    tag="seghandwriting-base/python:3.11-bookworm",
    setting="PYTHON_IMAGE",
    packages=("python3", "python3-pip", "python3-venv", "python-is-python3", "ca-certificates"),
    # The official image's Python is its own, so pip installs into it; Debian's is marked as managed
    # by apt (PEP 668). The stand-in is a base image like the official one: pip owns it.
    hooks=('rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED', 'rm -rf "$1"/var/lib/apt/lists/*'),
    changes=("ENV LANG=C.UTF-8", 'CMD ["python3"]'),
)
REDIS = Debootstrapped(
    tag="seghandwriting-base/redis:7-bookworm",
    setting="REDIS_IMAGE",
    packages=("redis-server",),
    # Like the official image: the server runs as the redis user and keeps its files in /data.
    hooks=('mkdir -p "$1"/data', 'chroot "$1" chown redis:redis /data', 'rm -rf "$1"/var/lib/apt/lists/*'),
    changes=("WORKDIR /data", "USER redis", "EXPOSE 6379", 'CMD ["redis-server"]'),
)
PADDLE_TAG = "seghandwriting-base/paddle:3.3.1-cpu"
PADDLE_DOCKERFILE = f"""\
FROM {PYTHON.tag}
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=secret,id=build_ca \\
    if [ -s /run/secrets/build_ca ]; then export PIP_CERT=/run/secrets/build_ca; fi; \\
    python -m pip install --no-cache-dir paddlepaddle==3.3.1 && python -c "import paddle"
"""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def current_recipe(tag: str) -> str | None:
    done = subprocess.run(["docker", "image", "inspect", "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}',
                           tag], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def build_debootstrapped(image: Debootstrapped) -> None:
    recipe = _digest(image.recipe())
    cmd = ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(image.packages)}"]
    cmd += [f"--customize-hook={hook}" for hook in image.hooks]
    cmd += [SUITE, "-"]
    importer = ["docker", "import"]
    for change in (*image.changes, f"LABEL {LABEL}={recipe}"):
        importer += ["--change", change]
    importer += ["-", image.tag]
    with tempfile.TemporaryFile() as err:
        debootstrap = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        imported = subprocess.run(importer, stdin=debootstrap.stdout, capture_output=True, text=True, check=False)
        debootstrap.stdout.close()
        rc = debootstrap.wait()
        if rc != 0:
            err.seek(0)
            last = err.read().decode(errors="replace").strip().splitlines()[-1:]
            raise SystemExit(f"base-images: mmdebstrap failed for {image.tag}: {last[0] if last else rc}")
    if imported.returncode != 0:
        raise SystemExit(f"base-images: docker import failed for {image.tag}: {imported.stderr.strip()}")


def paddle_recipe() -> str:
    return _digest(PADDLE_DOCKERFILE + (current_recipe(PYTHON.tag) or ""))


def build_paddle(ca_bundle: str | None) -> None:
    buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False).returncode == 0
    cmd = ["docker", "buildx", "build", "--load"] if buildx else ["docker", "build"]
    if ca_bundle:
        cmd += ["--secret", f"id=build_ca,src={ca_bundle}"]
    cmd += ["--label", f"{LABEL}={paddle_recipe()}", "-t", PADDLE_TAG, "-"]
    done = subprocess.run(cmd, input=PADDLE_DOCKERFILE, capture_output=True, text=True, check=False,
                          env={**os.environ, "DOCKER_BUILDKIT": "1"})
    if done.returncode != 0:
        text = (done.stdout + done.stderr).strip()
        hint = " (behind a TLS-intercepting proxy: set BUILD_CA_BUNDLE)" if "CERTIFICATE_VERIFY_FAILED" in text else ""
        raise SystemExit(f"base-images: building {PADDLE_TAG} failed{hint}: {text.splitlines()[-1]}")


OFFICIAL = {"PYTHON_IMAGE": "python:3.11-slim-bookworm", "REDIS_IMAGE": "redis:7.4-alpine"}


def official_available() -> bool:
    """Whether the official bases of the CPU stack are here, or can be pulled."""
    for image in OFFICIAL.values():
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode:
            if subprocess.run(["docker", "pull", "--quiet", image], capture_output=True, check=False).returncode:
                return False
    return True


def ensure(ca_bundle: str | None = None) -> dict[str, str]:
    """Build what is missing or stale, quietly; the settings that name the stand-ins."""
    for img in (PYTHON, REDIS):
        if current_recipe(img.tag) != _digest(img.recipe()):
            build_debootstrapped(img)
    if current_recipe(PADDLE_TAG) != paddle_recipe():
        build_paddle(ca_bundle)
    return {PYTHON.setting: PYTHON.tag, REDIS.setting: REDIS.tag, "PADDLE_IMAGE": PADDLE_TAG}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make base-images", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if the recipe is unchanged")
    parser.add_argument("--no-paddle", action="store_true", help="skip the Paddle stand-in (GPU Dockerfile check)")
    args = parser.parse_args(argv)
    for tool in ("docker", "mmdebstrap"):
        if not shutil.which(tool):
            raise SystemExit(f"base-images: {tool} is not installed (Debian: apt-get install "
                             f"{'docker.io' if tool == 'docker' else tool}; make tools does it)")
    if os.geteuid() != 0:
        raise SystemExit("base-images: mmdebstrap needs root here: sudo make base-images")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        raise SystemExit("base-images: no Docker engine answers (start Docker, or set DOCKER_HOST)")

    todo = [img for img in (PYTHON, REDIS)
            if args.force or current_recipe(img.tag) != _digest(img.recipe())]
    started = time.monotonic()
    with ThreadPoolExecutor(max(1, len(todo))) as pool:
        for img, _ in zip(todo, pool.map(build_debootstrapped, todo), strict=True):
            print(f"built {img.tag}")
    if not args.no_paddle and (args.force or current_recipe(PADDLE_TAG) != paddle_recipe()):
        build_paddle(os.environ.get("BUILD_CA_BUNDLE") or None)
        print(f"built {PADDLE_TAG}")
    print(f"base images ready in {time.monotonic() - started:.0f} s; settings for .env:")
    print(f"PYTHON_IMAGE={PYTHON.tag}")
    print(f"REDIS_IMAGE={REDIS.tag}")
    if not args.no_paddle:
        print(f"PADDLE_IMAGE={PADDLE_TAG}   # for docker-compose.yml on a machine without a GPU image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
