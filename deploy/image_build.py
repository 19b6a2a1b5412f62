"""Build the bundle's image with docker or podman, whichever is present (`make image`).

    python -m deploy.image_build [--tag restoration-serve] [--base-image IMAGE] [--engine podman]

pip inside the build reaches the package index the way pip on this host does: the host's effective
pip configuration (`pip config list` plus PIP_* variables) is written to a temporary file and given to
the build as a secret, with the certificate bundle it names; both are mounted only while the
`pip install` step runs and never stored in a layer (Dockerfile). Local folders that configuration
names (file:// indexes, find-links, constraints) are bind-mounted read-only into the build with
podman; docker cannot mount host folders into a build, so with docker they must be reachable otherwise.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("docker", "podman")
# Options whose values are local paths (or file:// URLs) the build needs to see.
PATH_OPTIONS = {"index-url", "extra-index-url", "find-links", "constraint", "requirement"}


def find_engine(preferred: str | None = None) -> str:
    """The container engine to use: `preferred`, else docker when its daemon answers, else podman."""
    candidates = [preferred] if preferred else list(ENGINES)
    for name in candidates:
        if shutil.which(name) and engine_works(name):
            return name
    raise SystemExit(f"no working container engine: install docker (with a running daemon) or podman "
                     f"(Debian: apt-get install podman); tried {', '.join(candidates)}")


def engine_works(name: str) -> bool:
    """Whether `name info` succeeds (a docker client without a daemon does not)."""
    try:
        return subprocess.run([name, "info"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def host_pip_options() -> dict[str, str]:
    """pip's effective options on this host, {option: value}: config files, then PIP_* variables on top
    (the order pip itself applies). `cert` is left out: it travels as its own secret."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    options: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        key, _, value = line.partition("=")
        if "." in key and value:
            options[key.split(".", 1)[1]] = value.strip().strip("'\"")
    for name, value in os.environ.items():
        if name.startswith("PIP_") and name != "PIP_CONFIG_FILE":
            options[name[4:].lower().replace("_", "-")] = value
    return options


def local_paths(options: dict[str, str]) -> list[Path]:
    """Existing local folders and files the pip options name (file:// URLs and plain paths)."""
    found: list[Path] = []
    for key in sorted(PATH_OPTIONS & options.keys()):
        for item in options[key].split():
            path = Path(item.removeprefix("file://"))
            if key.endswith("index-url"):
                path = path.parent  # a local index's pages link to files beside it (simple/ -> ../files/)
            if path.is_absolute() and path.exists() and path not in found:
                found.append(path)
    return found


def write_pip_conf(options: dict[str, str], folder: Path) -> Path:
    """A pip.conf holding `options` (without `cert`) in `folder`."""
    lines = ["[global]"] + [f"{k} = {v}" for k, v in sorted(options.items()) if k != "cert"]
    conf = folder / "pip.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


def build_command(engine: str, tag: str, base_image: str | None, conf: Path, cert: Path | None,
                  mounts: list[Path], context: Path = ROOT, runtime: str | None = None) -> list[str]:
    """The engine's build command line: the pip secrets, BASE_IMAGE when given, podman's bind mounts
    and OCI runtime (runc where crun refuses a hybrid cgroup hierarchy)."""
    cmd = [engine, "build", "-t", tag, "--secret", f"id=pip.conf,src={conf}"]
    if runtime and engine == "podman":
        cmd += ["--runtime", runtime]
    if cert:
        cmd += ["--secret", f"id=pip-cert,src={cert}"]
    if base_image:
        cmd += ["--build-arg", f"BASE_IMAGE={base_image}"]
    if engine == "podman":
        cmd += [arg for path in mounts for arg in ("--volume", f"{path}:{path}:ro")]
    return cmd + [str(context)]


def build(tag: str = "restoration-serve", base_image: str | None = None, engine: str | None = None,
          timeout: float | None = None, runtime: str | None = None) -> float:
    """Build the image; returns the build's seconds. Raises CalledProcessError or TimeoutExpired."""
    engine = find_engine(engine)
    options = host_pip_options()
    cert = Path(options.get("cert", "")) if options.get("cert") else None
    mounts = local_paths(options)
    if engine == "docker" and mounts:
        print(f"note: docker cannot mount {', '.join(map(str, mounts))} into the build; pip there may not find "
              "them (podman can)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="pip-secret-") as folder:
        conf = write_pip_conf(options, Path(folder))
        cmd = build_command(engine, tag, base_image, conf, cert if cert and cert.is_file() else None, mounts,
                            runtime=runtime)
        print("+", " ".join(cmd), file=sys.stderr)
        started = time.monotonic()
        # DOCKER_BUILDKIT: the legacy docker builder knows neither secrets nor RUN --mount.
        subprocess.run(cmd, check=True, timeout=timeout, env={**os.environ, "DOCKER_BUILDKIT": "1"})
        return time.monotonic() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", default="restoration-serve")
    parser.add_argument("--base-image", default=os.environ.get("BASE_IMAGE") or None,
                        help="the Dockerfile's BASE_IMAGE (default: $BASE_IMAGE, else the Dockerfile's own)")
    parser.add_argument("--engine", choices=ENGINES, default=os.environ.get("ENGINE") or None)
    parser.add_argument("--runtime", default=os.environ.get("RUNTIME") or None,
                        help="podman's OCI runtime, e.g. runc where crun fails on a hybrid cgroup hierarchy")
    args = parser.parse_args(argv)
    seconds = build(args.tag, args.base_image, args.engine, runtime=args.runtime)
    print(f"built {args.tag} in {seconds:.0f} s")


if __name__ == "__main__":
    main()
