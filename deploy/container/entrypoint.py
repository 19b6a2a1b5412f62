"""The container's main process: TorchServe on the container's loopback, nginx in front of it.

    python -m deploy.container.entrypoint [--bind 0.0.0.0] [--port 8080] [--metrics-port 8082]

Why a proxy? What TorchServe 0.12.0 does with token authorization on (found by experiment;
tests/test_deploy.py keeps checking the /ping part):
- each start draws new random keys and there is no way to supply one, so replicas behind one
  Kubernetes Service would each want a different token;
- /ping answers 400 without the inference key, so an HTTP health probe cannot use it;
- keys expire after ``token_expiration_min`` (60 by default) and are not replaced on their own.

So TorchServe listens on 127.0.0.1 only, token authorization still on, with keys that never leave
the container and do not expire. Once every model has a READY worker (TorchServe's own /ping says
Healthy before the models are loaded), nginx listens on the container's interface, checks the one token
the user gives ($TS_TOKEN_FILE's content, else $TS_TOKEN; without either, one drawn here and printed
once) and forwards with TorchServe's key. /ping passes without a token. TorchServe's metrics API
(which takes no token) listens on the container's interface for Prometheus; the management and
gRPC APIs stay on loopback.

The state folder (TorchServe's key file, logs, unpacked models; nginx's config) is made afresh at
every start. Either process ending ends the container. SIGTERM stops nginx gracefully (requests in
flight are answered), then TorchServe.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import yaml

from archives.build import endpoints
from serving.server import ROOT, Server, read_properties, wait_ready

NGINX_TEMPLATE = Path(__file__).with_name("nginx.conf")
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~+/=-]{16,}")  # base64, base64url, hex, UUIDs; nothing nginx would interpret
INTERNAL_KEY_LIFETIME_MIN = 10 * 365 * 24 * 60  # the internal key never leaves the container
PROXY_MARGIN_S = 60  # nginx waits this much longer than the slowest model may take
STARTUP_TIMEOUT_S = 600  # every model READY within this, or the container exits (deployment.yaml's startupProbe)


@dataclass(frozen=True)
class Ports:
    public: int = 8080           # nginx: inference API behind the token, /ping open
    metrics: int = 8082          # TorchServe's metrics API
    inference: int = 8090        # TorchServe's inference API, loopback only
    management: int = 8081       # loopback only
    grpc_inference: int = 7070   # loopback only
    grpc_management: int = 7071  # loopback only


def user_token(env: Mapping[str, str]) -> str | None:
    """The token the user supplied ($TS_TOKEN_FILE's content, else $TS_TOKEN), or None if neither is set."""
    if env.get("TS_TOKEN_FILE"):
        source = f"the file {env['TS_TOKEN_FILE']} (TS_TOKEN_FILE)"
        try:
            token = Path(env["TS_TOKEN_FILE"]).read_text().strip()
        except OSError as exc:
            raise SystemExit(f"cannot read {source}: {exc.strerror}") from None
    else:
        token, source = env.get("TS_TOKEN", "").strip(), "TS_TOKEN"
        if not token:
            return None
    if not TOKEN_PATTERN.fullmatch(token):
        raise SystemExit(f"the token in {source} must be at least 16 characters of A-Z a-z 0-9 . _ ~ + / = - "
                         "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return token


def token_for(env: Mapping[str, str]) -> tuple[str, bool]:
    """The user's token, or a new random one; True when it was drawn here (then it is printed once)."""
    token = user_token(env)
    return (token, False) if token else (secrets.token_urlsafe(32), True)


def torchserve_properties(base: Mapping[str, str], bind: str, ports: Ports, model_store: Path) -> dict[str, str]:
    """The bundle's config.properties with the container's addresses: only metrics on ``bind``."""
    return {**base,
            "inference_address": f"http://127.0.0.1:{ports.inference}",
            "management_address": f"http://127.0.0.1:{ports.management}",
            "metrics_address": f"http://{bind}:{ports.metrics}",
            "grpc_inference_address": "127.0.0.1", "grpc_management_address": "127.0.0.1",
            "grpc_inference_port": str(ports.grpc_inference), "grpc_management_port": str(ports.grpc_management),
            "model_store": str(model_store),
            "disable_token_authorization": "false",
            "token_expiration_min": str(INTERNAL_KEY_LIFETIME_MIN),
            # TorchServe restarts a worker still loading after 120 s; on a slow node that can go on and on
            "default_startup_timeout": str(STARTUP_TIMEOUT_S)}


def longest_response_timeout() -> int:
    """The largest responseTimeout (s) among the models' model-config.yaml."""
    return max(int(yaml.safe_load((ROOT / "archives" / name / "model-config.yaml").read_text())["responseTimeout"])
               for name in endpoints())


def nginx_conf(values: Mapping[str, object]) -> str:
    """deploy/container/nginx.conf with every {{name}} replaced; a name left over is an error."""
    text = NGINX_TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace("{{%s}}" % name, str(value))
    if leftover := sorted(set(re.findall(r"\{\{(\w+)\}\}", text))):
        raise ValueError(f"nginx.conf placeholders without a value: {leftover}")
    return text


class Children:
    """The processes this one started, each in its own process group (TorchServe's Java and workers too)."""

    def __init__(self) -> None:
        self.running: dict[str, tuple[subprocess.Popen, int]] = {}

    def start(self, name: str, command: list[str], stop_signal: int = signal.SIGTERM, **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL, **kwargs)
        self.running[name] = (process, stop_signal)
        return process

    def first_exit(self) -> tuple[str, int]:
        while True:
            for name, (process, _) in self.running.items():
                if process.poll() is not None:
                    return name, process.returncode
            time.sleep(0.5)

    def stop(self, timeout: float = 90.0) -> None:
        """Stop the last started first (nginx finishes the requests in flight before TorchServe goes),
        each by its stop signal; wait for the whole group, which outlives its leader (TorchServe's
        launcher dies at once, its Java frontend in its own time). SIGKILL what is left after ``timeout``."""
        deadline = time.time() + timeout
        for process, stop_signal in reversed(self.running.values()):
            _signal_group(process.pid, stop_signal)
            while _signal_group(process.pid, 0) and time.time() < deadline:
                process.poll()  # reap the leader, or the group would never look empty
                time.sleep(0.2)
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False if the group has no process left."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False


def wait_for_key(key_file: Path, torchserve: subprocess.Popen, timeout: float = 300.0) -> str:
    """TorchServe's inference key, once it has written its key file."""
    deadline = time.time() + timeout
    while time.time() < deadline and torchserve.poll() is None:
        try:
            return json.loads(key_file.read_text())["inference"]["key"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            time.sleep(0.5)
    raise SystemExit(f"TorchServe wrote no key file ({key_file}); it "
                     + ("exited" if torchserve.poll() is not None else f"is still starting after {timeout:.0f} s"))


def wait_for_models(server: Server, model_store: Path) -> None:
    """Block until every archive's model has a READY worker. TorchServe's /ping says Healthy as soon
    as its HTTP server is up, before the models load, so the proxy (and with it /ping, the probes'
    path) opens only after this."""
    try:
        wait_ready(server, sorted(p.stem for p in model_store.glob("*.mar")), timeout=STARTUP_TIMEOUT_S)
    except (RuntimeError, OSError) as exc:
        raise SystemExit(f"restoration-serve: the models did not get ready: {exc}") from None


def serve(bind: str, ports: Ports, state: Path, model_store: Path, config: Path, token: str, generated: bool) -> int:
    """Run TorchServe and nginx until one of them ends or a signal arrives; returns the exit status."""
    shutil.rmtree(state, ignore_errors=True)  # a stale pid file would stop TorchServe from starting
    (state / "tmp").mkdir(parents=True)
    props = torchserve_properties(read_properties(config), bind, ports, model_store)
    (state / "config.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    bin_dir = Path(sys.executable).parent  # the venv's: torchserve and the workers' Python
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "TEMP": str(state / "tmp"), "TMPDIR": str(state / "tmp")}
    for name in ("TS_TOKEN", "TS_TOKEN_FILE"):  # the user's token is nginx's business, not the workers'
        env.pop(name, None)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    children = Children()
    try:
        torchserve = children.start("torchserve", [
            str(bin_dir / "torchserve"), "--start", "--foreground", "--ncs", "--model-store", str(model_store),
            "--ts-config", str(state / "config.properties")], cwd=state, env=env)
        internal_key = wait_for_key(state / "key_file.json", torchserve)
        loopback = "http://127.0.0.1:{}".format
        wait_for_models(Server(state, loopback(ports.inference), loopback(ports.management), loopback(ports.metrics)),
                        model_store)
        (state / "nginx").mkdir()
        (state / "nginx" / "nginx.conf").write_text(nginx_conf({
            "bind": bind, "port": ports.public, "inference_port": ports.inference, "token": token,
            "internal_key": internal_key,
            "max_request_bytes": props["max_request_size"],
            "timeout_s": longest_response_timeout() + PROXY_MARGIN_S}))
        children.start("nginx", [nginx, "-p", str(state / "nginx"), "-c", "nginx.conf", "-e", "stderr",
                                 "-g", "daemon off;"], stop_signal=signal.SIGQUIT)  # SIGQUIT: graceful
        print(f"restoration-serve: inference API on http://{bind}:{ports.public}/predictions/<endpoint> "
              f"(Authorization: Bearer <token>), health on /ping, metrics on http://{bind}:{ports.metrics}/metrics",
              flush=True)
        if generated:
            print(f"restoration-serve: generated token (printed only now; set TS_TOKEN_FILE or TS_TOKEN to choose "
                  f"your own): {token}", flush=True)
        name, status = children.first_exit()
        print(f"restoration-serve: {name} exited with status {status}; stopping", file=sys.stderr, flush=True)
        return status or 1
    finally:
        children.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bind", default="0.0.0.0",
                        help="the container's interface (publish its ports on the host's loopback)")
    parser.add_argument("--port", type=int, default=Ports.public)
    parser.add_argument("--metrics-port", type=int, default=Ports.metrics)
    parser.add_argument("--internal-ports", type=int, nargs=4, metavar=("INFERENCE", "MANAGEMENT", "GRPC", "GRPC_MGMT"),
                        default=(Ports.inference, Ports.management, Ports.grpc_inference, Ports.grpc_management))
    parser.add_argument("--state", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "restoration-serve")
    parser.add_argument("--model-store", type=Path, default=ROOT / "model_store")
    parser.add_argument("--config", type=Path, default=ROOT / "config.properties")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds through serve()'s cleanup
    ports = Ports(args.port, args.metrics_port, *args.internal_ports)
    sys.exit(serve(args.bind, ports, args.state.resolve(), args.model_store.resolve(), args.config,
                   *token_for(os.environ)))


if __name__ == "__main__":
    main()
