#!/usr/bin/env python3
"""`make images`: the compose stack's images, from a Debian base we bootstrap ourselves.

No image registry is reachable here, so nothing is pulled. The base is Debian bookworm made with
`debootstrap --variant=minbase` from the Debian mirror apt's own sources name, imported with
`docker import`. Every other image builds on it (localstack/docker/*.Dockerfile and
infra/agent/Dockerfile).

Caching: each image's tag is a hash of what goes into it (its Dockerfile, the files it copies,
its parent's tag). An image whose tag exists is not built again, so a second `make images` with
nothing changed builds nothing. The tags are written to .local/docker/images.env for compose.

pip reaches PyPI through the host's TLS-intercepting proxy, so builds get the host's CA bundle
as a BuildKit secret (id=ca); it is never written into a layer. The host's pip also lists local
wheel folders (/opt/wheels, /opt/pypi); they hold nothing these images install, so only the CA is
passed on.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
STATE = ROOT / ".local" / "docker"
IMAGES_ENV = STATE / "images.env"
CA_BUNDLE = Path(os.environ.get("HC_DOCKER_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
SUITE = "bookworm"
BASE_RECIPE = "debootstrap --variant=minbase v1"  # change it to force a new base
SKIP_NAMES = {"__pycache__", ".pytest_cache", "node_modules"}


class ImageError(RuntimeError):
    """A build step failed; the message is one line naming the step."""


def say(message: str) -> None:
    print(message, flush=True)


def docker_cli() -> str:
    """Debian's docker CLI (20.10) builds with BuildKit by itself; a newer CLI without the buildx
    plugin refuses DOCKER_BUILDKIT=1. Prefer Debian's, then whatever is on PATH."""
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ImageError("no docker command found: apt-get install -y docker.io")


def docker(*args: str, capture: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([docker_cli(), *args], capture_output=capture, text=True, env=env)


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag).returncode == 0


# --- the base ---------------------------------------------------------------


def debian_mirror() -> str:
    """The Debian archive apt's sources name (deb822 `URIs:` or a one-line `deb` entry)."""
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for uri in re.findall(r"^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, re.M):
            if re.search(r"/debian/?$", uri):
                return uri
    return "http://deb.debian.org/debian"


def base_tag() -> str:
    digest = hashlib.sha256(f"{SUITE} {debian_mirror()} {BASE_RECIPE}".encode()).hexdigest()[:16]
    return f"hostchecker/debian:{SUITE}-{digest}"


def build_base() -> str:
    tag = base_tag()
    if image_exists(tag):
        say(f"  base      {tag} (cached)")
        return tag
    if not shutil.which("debootstrap"):
        raise ImageError("debootstrap is missing: apt-get install -y debootstrap")
    mirror = debian_mirror()
    say(f"  base      {tag}: debootstrap --variant=minbase {SUITE} from {mirror}")
    with tempfile.TemporaryDirectory(prefix="hc-rootfs-") as rootfs:
        run = subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, rootfs, mirror], capture_output=True, text=True
        )
        if run.returncode != 0:
            raise ImageError(f"debootstrap failed: {_tail(run)}")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in Path(rootfs, junk).glob("*"):
                if item.is_file():
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            [docker_cli(), "import", "-c", 'CMD ["/bin/bash"]', "-", tag],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
        )
        tar.stdout.close()
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise ImageError(f"docker import failed: {_tail(imp)}")
    return tag


# --- the images on top --------------------------------------------------------


@dataclass
class Image:
    """One image: its Dockerfile, its parent, and the files its build context holds (dest -> source)."""

    name: str
    dockerfile: Path
    parent: str  # "base" or another Image's name; passed as the build arg below
    parent_arg: str = "BASE"
    files: dict[str, Path] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)
    # sources hashed by size and mtime, not content (the copied interpreter tree: big, never edited)
    by_stat: tuple[str, ...] = ()


def python313_prefix() -> Path | None:
    """The host's Python 3.13 tree for the LocalStack image (pyenv's, as host mode finds it)."""
    env = os.environ.get("LOCALSTACK_PYTHON")
    if env and Path(env).exists():
        return Path(env).resolve().parent.parent
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(root, "versions", "3.13*", "bin", "python3.13")), reverse=True)
    return Path(found[0]).resolve().parent.parent if found else None


def image_specs() -> list[Image]:
    app_files = {f"app/{p}": ROOT / p for p in ("app.py", "chalicelib", "scripts", ".chalice/config.json")}
    py313 = python313_prefix()
    return [
        Image("python", HERE / "python.Dockerfile", "base"),
        Image(
            "app",
            HERE / "app.Dockerfile",
            "python",
            "PYTHON_IMAGE",
            {"requirements-api.txt": HERE / "requirements-api.txt", **app_files},
        ),
        Image(
            "agent",
            ROOT / "infra" / "agent" / "Dockerfile",
            "python",
            "PYTHON_IMAGE",
            {
                "requirements-agent.txt": ROOT / "requirements-agent.txt",
                "chalicelib/targets.py": ROOT / "chalicelib" / "targets.py",
                "chalicelib/protocol.py": ROOT / "chalicelib" / "protocol.py",
                "chalicelib/httpopts.py": ROOT / "chalicelib" / "httpopts.py",
                "agent": ROOT / "agent",
                "infra/agent/container-entrypoint.sh": ROOT / "infra" / "agent" / "container-entrypoint.sh",
                "infra/agent/regional-delay.py": ROOT / "infra" / "agent" / "regional-delay.py",
            },
        ),
        Image(
            "ui",
            HERE / "ui.Dockerfile",
            "base",
            "BASE",
            {
                "nginx.conf": HERE / "nginx.conf",
                "ui-entrypoint.sh": HERE / "ui-entrypoint.sh",
                "dist": ROOT / "frontend" / "dist",
            },
        ),
        Image(
            "postgres",
            HERE / "postgres.Dockerfile",
            "base",
            "BASE",
            {"postgres-entrypoint.sh": HERE / "postgres-entrypoint.sh"},
        ),
        Image("redis", HERE / "redis.Dockerfile", "base"),
        Image(
            "localstack",
            HERE / "localstack.Dockerfile",
            "base",
            "BASE",
            {
                "python3.13": py313 or ROOT / "missing-python3.13",
                "requirements-host.txt": ROOT / "localstack" / "requirements-host.txt",
                "localstack-healthcheck.py": HERE / "localstack-healthcheck.py",
                "local.yaml": ROOT / "infra" / "local.yaml",
                "ready.d": ROOT / "localstack" / "init" / "ready.d",
            },
            {"PYTHON_PREFIX": str(py313 or "")},
            by_stat=("python3.13",),
        ),
    ]


def _walk(source: Path):
    if source.is_file():
        yield "", source
        return
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_NAMES)
        for name in sorted(filenames):
            if not name.endswith(".pyc"):
                path = Path(dirpath, name)
                yield str(path.relative_to(source)), path


_HINTS = {
    "dist": "; run `make ui`",
    "python3.13": " (the LocalStack image copies a Python 3.13 tree: pyenv install 3.13.0, "
    "or set LOCALSTACK_PYTHON=/path/to/bin/python3.13)",
}


def content_tag(image: Image, parent_tag: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"{parent_tag}\n{image.args}\n".encode())
    digest.update(image.dockerfile.read_bytes())
    for dest, source in sorted(image.files.items()):
        if not source.exists():
            raise ImageError(f"{image.name}: {source} is missing" + _HINTS.get(dest, ""))
        for rel, path in _walk(source):
            digest.update(f"{dest}/{rel}\0".encode())
            if dest in image.by_stat:
                stat = path.lstat()
                digest.update(f"{stat.st_size} {int(stat.st_mtime)}".encode())
            elif path.is_symlink():
                digest.update(os.readlink(path).encode())
            else:
                digest.update(path.read_bytes())
    return f"hostchecker/{image.name}:{digest.hexdigest()[:16]}"


def assemble_context(image: Image, into: Path) -> None:
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    shutil.copy2(image.dockerfile, into / "Dockerfile")
    ignore = shutil.ignore_patterns(*SKIP_NAMES, "*.pyc")
    for dest, source in image.files.items():
        target = into / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(source, target)


def build_image(image: Image, parent_tag: str) -> str:
    tag = content_tag(image, parent_tag)
    if image_exists(tag):
        say(f"  {image.name:<9} {tag} (cached)")
        return tag
    if not CA_BUNDLE.exists():
        raise ImageError(f"the CA bundle {CA_BUNDLE} is missing (set HC_DOCKER_CA_BUNDLE)")
    say(f"  {image.name:<9} {tag}: building")
    started = time.monotonic()
    context = STATE / "build" / image.name
    assemble_context(image, context)
    args = [f"--build-arg={k}={v}" for k, v in {image.parent_arg: parent_tag, **image.args}.items()]
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    run = docker(
        "build",
        "--progress=plain",
        "-t",
        tag,
        "--label",
        f"org.hostchecker.image={image.name}",
        "--secret",
        f"id=ca,src={CA_BUNDLE}",
        *args,
        str(context),
        env=env,
    )
    shutil.rmtree(context, ignore_errors=True)
    if run.returncode != 0:
        log = STATE / f"build-{image.name}.log"
        log.write_text(run.stdout + run.stderr)
        raise ImageError(f"building {image.name} failed: {_tail(run)} (full log: {log})")
    say(f"  {image.name:<9} built in {time.monotonic() - started:.0f} s")
    return tag


def build_all(only: list[str] | None = None) -> dict[str, str]:
    """Build what is missing; return {name: tag} and write images.env (HC_IMAGE_<NAME>=tag)."""
    STATE.mkdir(parents=True, exist_ok=True)
    specs = image_specs()
    wanted = _with_parents(specs, only) if only else {s.name for s in specs}
    tags = {"base": build_base()}
    for image in specs:
        if image.name in wanted:
            tags[image.name] = build_image(image, tags[image.parent])
    write_images_env(tags)
    return tags


def _with_parents(specs: list[Image], names: list[str]) -> set[str]:
    by_name = {s.name: s for s in specs}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ImageError(f"--only: no image named {', '.join(unknown)} (known: {', '.join(by_name)})")
    wanted: set[str] = set()
    for name in names:
        while name in by_name:
            wanted.add(name)
            name = by_name[name].parent
    return wanted


def write_images_env(tags: dict[str, str]) -> None:
    lines = ["# Written by `make images` (localstack/docker/images.py): the content-hash tags compose runs."]
    merged = {**read_images_env(), **{f"HC_IMAGE_{name.upper()}": tag for name, tag in tags.items()}}
    lines += [f"{key}={tag}" for key, tag in sorted(merged.items())]
    IMAGES_ENV.write_text("\n".join(lines) + "\n")


def read_images_env() -> dict[str, str]:
    values = {}
    if IMAGES_ENV.exists():
        for line in IMAGES_ENV.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                values[key] = value
    return values


def _tail(run: subprocess.CompletedProcess) -> str:
    lines = (run.stderr or run.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit {run.returncode}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", help="build only this image (and what it needs)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    say("==> images (cached by content hash)")
    try:
        build_all(args.only)
    except ImageError as exc:
        say(f"!! {exc}")
        return 1
    say(f"==> images ready in {time.monotonic() - started:.0f} s; tags in {IMAGES_ENV.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
