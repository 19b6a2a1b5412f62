"""Start, wait for and stop a TorchServe instance of this bundle.

    python -m serving.server start [--config config.properties] [--state .serve]
    python -m serving.server stop  [--state .serve]

The state folder holds what TorchServe would otherwise put in /tmp or the working directory
(socket, pid file, unpacked models via TEMP/TMPDIR; key_file.json; logs), so two servers
never collide and ``stop`` stops exactly the server that ``start`` started.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from archives.build import build
from client.auth import TokenSource, request_with_key

ROOT = Path(__file__).resolve().parent.parent
LOG_CONFIG = ROOT / "serving" / "log4j2.xml"  # each line once, size-bounded rotation


@dataclass
class Server:
    state: Path
    inference_url: str
    management_url: str
    metrics_url: str

    @property
    def key_file(self) -> Path:
        return self.state / "key_file.json"

    def save(self) -> None:
        """Record the addresses beside the key file (state/server.json), for clients that renew keys."""
        urls = {"inference_url": self.inference_url, "management_url": self.management_url,
                "metrics_url": self.metrics_url}
        (self.state / "server.json").write_text(json.dumps(urls, indent=2))

    def keys(self) -> dict[str, str]:
        data = json.loads(self.key_file.read_text())
        return {api: data[api]["key"] for api in ("inference", "management")}

    def headers(self, api: str = "inference") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys()[api]}"}

    def tokens(self, api: str = "inference") -> TokenSource:
        """A holder of the ``api`` key that renews it when the server refuses it (keys expire)."""
        return TokenSource(self.key_file, api=api, management_url=self.management_url)

    def workers(self, model: str, tokens: TokenSource | None = None) -> list[dict]:
        """The model's workers as the management API describes them (``id``, ``pid``, ``status``, ...)."""
        reply = request_with_key(tokens or self.tokens("management"), "GET", f"{self.management_url}/models/{model}",
                                 timeout=10)
        reply.raise_for_status()
        return reply.json()[0]["workers"]


def read_properties(path: Path) -> dict[str, str]:
    props = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    return props


def _url(address: str) -> str:
    return re.sub(r"^https?://0\.0\.0\.0", "http://127.0.0.1", address)


def java_missing() -> bool:
    try:
        subprocess.run(["java", "-version"], capture_output=True, check=True)
        return False
    except (OSError, subprocess.CalledProcessError):
        return True


def _pid_file(state: Path) -> Path:
    return state / "tmp" / ".model_server.pid"


def _env(state: Path) -> dict[str, str]:
    tmp = state / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    # TorchServe looks for the `torchserve` launcher's Python; keep the venv's bin on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "TEMP": str(tmp), "TMPDIR": str(tmp), "PATH": path}


def start(config: Path, state: Path, model_store: Path) -> Server:
    """Launch TorchServe in the background with ``config``; its console (warnings and errors) goes to
    state/torchserve.log, its rotated logs to state/logs/ (serving/log4j2.xml)."""
    if java_missing():
        raise SystemExit("Java was not found: TorchServe needs a JDK 17, e.g. `sudo apt-get install openjdk-17-jdk-headless`.")
    state = state.resolve()
    if running_pid(state):
        raise SystemExit(f"a server from {state} is already running (pid {running_pid(state)}); stop it first")
    state.mkdir(parents=True, exist_ok=True)
    (state / "logs").mkdir(exist_ok=True)
    env = {**_env(state), "LOG_LOCATION": str(state / "logs"), "METRICS_LOCATION": str(state / "logs")}
    with open(state / "torchserve.log", "ab") as log:  # never a pipe: Java inherits it and the caller hangs
        subprocess.run(
            ["torchserve", "--start", "--ncs", "--model-store", str(model_store.resolve()),
             "--ts-config", str(config.resolve()), "--log-config", str(LOG_CONFIG)],
            cwd=state, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True)
    props = read_properties(config)
    server = Server(state, _url(props["inference_address"]), _url(props["management_address"]),
                    _url(props["metrics_address"]))
    server.save()
    return server


def running_pid(state: Path) -> int | None:
    """The pid recorded in ``state`` if that process is alive."""
    try:
        pid = int(_pid_file(state.resolve()).read_text().strip())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None


def wait_ready(server: Server, models: list[str], timeout: float = 300.0, grace: float = 15.0) -> None:
    """Block until every model has a READY worker; raise with the log's tail otherwise
    (early if the server process is gone once its ``grace`` seconds to write a pid file are over)."""
    started = time.time()
    pending = set(models)
    tokens = server.tokens("management")
    while pending and time.time() - started < timeout:
        if time.time() - started > grace and not running_pid(server.state):
            break
        try:
            for name in sorted(pending):
                if any(w["status"] == "READY" for w in server.workers(name, tokens)):
                    pending.discard(name)
        except (requests.RequestException, RuntimeError, json.JSONDecodeError, KeyError):
            pass  # not listening yet, no key file yet, or the model is still registering
        if pending:
            time.sleep(1)
    if pending:
        tails = [f"{path.name} ends:\n{path.read_text(errors='replace')[-3000:]}"
                 for path in (server.state / "torchserve.log", server.state / "logs" / "model_log.log") if path.exists()]
        raise RuntimeError(f"models not READY: {sorted(pending)}; " + "\n".join(tails))


def stop(state: Path, timeout: float = 30.0) -> bool:
    """Stop the server recorded in ``state`` (SIGTERM, then SIGKILL). True if one was running."""
    pid = running_pid(state)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while running_pid(state) and time.time() < deadline:
        time.sleep(0.2)
    if running_pid(state):
        os.kill(pid, signal.SIGKILL)
    _pid_file(state.resolve()).unlink(missing_ok=True)
    return True


PORT_FLOOR = 20000  # lowest port free_port picks
_handed_out: set[int] = set()


def port_range() -> range:
    """The ports free_port picks from: from ``PORT_FLOOR`` up to the lowest port the kernel gives outgoing
    connections as their source (Linux's setting, else its default), or to 65535 if that leaves too few."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(PORT_FLOOR, low if low > PORT_FLOOR + 1000 else 65536)


def free_port() -> int:
    """A loopback port nothing listens on, never one handed out before by this process, and below the
    kernel's ephemeral range where it allows: a port asked of the kernel (bind to 0) comes from that range,
    where any outgoing connection may take it as its source before the server binds it (a CI run failed
    so: "Address already in use" under a load test)."""
    ports = port_range()
    while True:
        port = random.choice(ports)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port


def start_isolated(work: Path, endpoints: list[str], settings: dict[str, str] | None = None) -> Server:
    """Build ``endpoints`` into work/model_store and start a server on free loopback ports
    (the repository's config.properties otherwise, with ``settings`` on top, e.g.
    ``{"token_expiration_min": "0.2"}``), READY on return. Used by tests and benchmarks."""
    store = work / "model_store"
    for name in endpoints:
        build(name, store)
    props = read_properties(ROOT / "config.properties")
    for key in ("inference_address", "management_address", "metrics_address"):
        props[key] = f"http://127.0.0.1:{free_port()}"
    props["grpc_inference_port"], props["grpc_management_port"] = str(free_port()), str(free_port())
    props["model_store"] = str(store)
    # As long for a worker to start as wait_ready waits (TorchServe kills and restarts one after 120 s,
    # which on a loaded machine can repeat until the wait is over).
    props["default_startup_timeout"] = "300"
    props.update(settings or {})
    config = work / "config.properties"
    config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    server = start(config, work / "state", store)
    try:
        wait_ready(server, endpoints)
    except RuntimeError:
        stop(server.state)
        raise
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--config", type=Path, default=ROOT / "config.properties")
    parser.add_argument("--state", type=Path, default=ROOT / ".serve")
    parser.add_argument("--model-store", type=Path, default=ROOT / "model_store")
    args = parser.parse_args(argv)
    if args.action == "stop":
        print("stopped" if stop(args.state) else f"no server from {args.state} is running")
        return
    models = sorted(p.stem for p in args.model_store.glob("*.mar"))
    if not models:
        raise SystemExit(f"no .mar archives in {args.model_store}: run `make archives` first")
    server = start(args.config, args.state, args.model_store)
    wait_ready(server, models)
    print(f"TorchServe is up with {', '.join(models)}.")
    print(f"  inference:  {server.inference_url}/predictions/<model>")
    print(f"  management: {server.management_url}   metrics: {server.metrics_url}/metrics")
    print(f"  API tokens: {server.key_file} (inference key: {server.keys()['inference']})")
    print(f'  try: curl -H "Authorization: Bearer {server.keys()["inference"]}" -T photo.png '
          f"{server.inference_url}/predictions/superres -o photo_x4.png")
    print("  stop with: make stop")


if __name__ == "__main__":
    main()
