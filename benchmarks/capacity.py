"""Capacity guide: requests per second one 2-core replica serves, per endpoint, and replicas for a load.

    python -m benchmarks.capacity [--load 10] [--utilisation 0.7] [--write-readme]     (or: make capacity)

Reads the latency measured through TorchServe (benchmarks/results/serve_latency.json, written by
``python -m benchmarks.serve_latency`` on a quiet 2-core machine) and prints the capacity guide's table;
``--write-readme`` replaces the table in docs/deployment.md (where README.md's deployment section moved,
issue 25), so new latency figures need only this command.

The model behind it: a replica runs one worker per endpoint, and a worker uses both cores for one
request (or one batch) at a time. A request to endpoint e therefore occupies the replica for its
latency t_e, a replica serves at most 1 / t_e requests per second of e alone, and a mixed load of
r_e requests per second needs ceil(sum(r_e * t_e) / u) replicas, u being the utilisation to plan
for (deploy/k8s/hpa.yaml's CPU target). Same-size photos arriving together are batched, which can
only raise the real figure.
"""
from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

from benchmarks.common import RESULTS, ROOT

DOC = ROOT / "docs" / "deployment.md"  # its capacity guide holds the table (the README links it)
BEGIN, END = "<!-- capacity:begin -->", "<!-- capacity:end -->"
UTILISATION = 0.7  # deploy/k8s/hpa.yaml scales out at 70% CPU


def latencies(path: Path = RESULTS / "serve_latency.json") -> dict[str, dict]:
    """Endpoint -> its serve_latency record (input size, median seconds), in name order."""
    results = json.loads(path.read_text())
    return {name: record for name, record in sorted(results.items()) if "median_seconds" in record}


def replicas(load: dict[str, float], seconds: dict[str, float], utilisation: float = UTILISATION) -> int:
    """Replicas for ``load`` (requests per second per endpoint) given each endpoint's latency."""
    busy = sum(rate * seconds[name] for name, rate in load.items())
    return max(1, math.ceil(busy / utilisation - 1e-9))


def table(load: float, utilisation: float = UTILISATION) -> str:
    """The capacity guide's table (markdown) and the sentence on mixed loads."""
    rows = latencies()
    seconds = {name: record["median_seconds"] for name, record in rows.items()}
    lines = [f"| endpoint | photo (PNG) | median latency | requests/s per replica | replicas for {load:g} requests/s |",
             "|---|---|---|---|---|"]
    for name, record in rows.items():
        lines.append(f"| {name} | {_photo(record)} | {seconds[name]:.2f} s | "
                     f"{1 / seconds[name]:.1f} | {replicas({name: load}, seconds, utilisation)} |")
    mixed = replicas(dict.fromkeys(rows, 1.0), seconds, utilisation)
    return "\n".join(lines) + (
        f"\n\nReplicas are counted at {utilisation:.0%} busy, the HPA's CPU target. A mixed load needs "
        f"ceil(Σ requests/s × latency / {utilisation:g}) replicas: 1 request/s on each of the {len(rows)} "
        f"endpoints needs {mixed}.")


def _photo(record: dict) -> str:
    """The upload's size, and the answer's when the benchmark recorded a different one (superres)."""
    output = record.get("output", record["input"])
    return (record["input"] if output == record["input"] else f"{record['input']} → {output}").replace("x", "×")


def write_readme(text: str, readme: Path = DOC) -> None:
    content = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(content):
        raise SystemExit(f"{readme} has no {BEGIN} ... {END} block to replace")
    readme.write_text(pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", content))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", type=float, default=10.0, help="requests per second to plan for (default 10)")
    parser.add_argument("--utilisation", type=float, default=UTILISATION)
    parser.add_argument("--write-readme", action="store_true", help=f"replace the table between {BEGIN} and {END}")
    args = parser.parse_args(argv)
    text = table(args.load, args.utilisation)
    print(text)
    if args.write_readme:
        write_readme(text)


if __name__ == "__main__":
    main()
