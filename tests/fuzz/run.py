"""Mutation fuzzer over the corpus: the decoder, every endpoint's handler in-process, optionally a live server.

    python -m tests.fuzz.run --n 20000            # `make fuzz N=20000`: long run, counts per outcome
    python -m tests.fuzz.run --n 500 --live       # also through a fresh TorchServe (worker PIDs must not change)

Every outcome must be an image or a JSON 4xx; anything else is a crash: printed with what was done
to which corpus file, the input saved under --save, and the exit status is 1.
The bounded run in `make test` (tests/test_fuzz_*.py) uses the same functions with small numbers.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "handlers"))  # the handlers import their siblings by plain name, as TorchServe does

from client.auth import request_with_key  # noqa: E402
from tests.fuzz.corpus import accepted, corpus  # noqa: E402
from tests.fuzz.mutations import random_mutant, systematic  # noqa: E402
from tests.fuzz.outcomes import answer_outcome, decode_outcome, is_crash  # noqa: E402


@dataclass
class Case:
    source: str  # corpus file
    label: str  # what was done to it
    data: bytes

    def __str__(self) -> str:
        return f"{self.source}: {self.label}"


@dataclass
class Tally:
    """Counts per outcome (crash messages folded into their exception type), the crashes, the slowest case."""

    counts: Counter = field(default_factory=Counter)
    crashes: list[tuple[Case, str]] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")

    def add(self, case: Case, outcome: str, seconds: float = 0.0) -> None:
        self.counts[outcome.split(":")[0]] += 1
        if is_crash(outcome):
            self.crashes.append((case, outcome))
        self.slowest = max(self.slowest, (seconds, str(case)))

    def report(self, title: str) -> str:
        lines = [f"{title}: {sum(self.counts.values())} inputs, {len(self.crashes)} crash(es); "
                 f"slowest {self.slowest[0]:.2f} s ({self.slowest[1]})"]
        lines += [f"  {n:7d}  {outcome}" for outcome, n in self.counts.most_common()]
        lines += [f"  CRASH on {case}: {outcome}" for case, outcome in self.crashes[:20]]
        return "\n".join(lines)


def cases(n_random: int, seed: int, sample: float = 1.0) -> Iterator[Case]:
    """The systematic mutants of every corpus file (``sample``: share of field/EXIF edits), then ``n_random`` random ones."""
    files = corpus()
    for name, data in files.items():
        for label, mutant in systematic(data, seed, sample):
            yield Case(name, label, mutant)
    rng = random.Random(seed)
    names = sorted(files)
    for _ in range(n_random):
        name = rng.choice(names)
        label, mutant = random_mutant(files[name], rng)
        yield Case(name, label, mutant)


def sample_cases(n: int, seed: int) -> list[Case]:
    """``n`` cases drawn evenly from the systematic and the random mutants (for the slower paths)."""
    rng = random.Random(seed)
    pool = list(cases(n, seed, sample=0.05))
    return rng.sample(pool, min(n, len(pool)))


def fuzz_decode(inputs: Iterable[Case], max_pixels: int = 1_000_000) -> Tally:
    tally = Tally()
    for case in inputs:
        started = time.perf_counter()
        outcome = decode_outcome(case.data, max_pixels)
        tally.add(case, outcome, time.perf_counter() - started)
    return tally


def good_inputs() -> list[Case]:
    return [Case(name, "unchanged", data) for name, data in corpus().items() if accepted(name)]


def fuzz_handler(handler, inputs: list[Case], batch: int = 4) -> Tally:
    """Batches of fuzzed inputs, each with one valid file, through ``handler.handle`` in-process."""
    from tests.support import run_handler

    tally, good = Tally(), good_inputs()
    for i in range(0, len(inputs), batch - 1):
        valid = good[(i // (batch - 1)) % len(good)]
        group = [valid, *inputs[i:i + batch - 1]]
        started = time.perf_counter()
        answers = run_handler(handler, [{"body": case.data} for case in group])
        seconds = time.perf_counter() - started
        for case, (status, content_type, body) in zip(group, answers):
            outcome = answer_outcome(status, content_type, body)
            if case is valid and outcome != "image":
                outcome = f"CRASH the valid file in the batch got {outcome}"
            tally.add(case, outcome, seconds)
    return tally


def fuzz_live(server, endpoint: str, inputs: list[Case], threads: int = 4) -> tuple[Tally, list[int], list[int]]:
    """Fuzzed inputs (and valid ones in between) sent concurrently, so that they share batches;
    returns the tally and the endpoint's worker PIDs before and after."""
    tokens = server.tokens()
    url = f"{server.inference_url}/predictions/{endpoint}"
    good = good_inputs()
    mixed = [c for i, case in enumerate(inputs) for c in ((case, good[i % len(good)]) if i % 3 == 0 else (case,))]

    def send(case: Case) -> tuple[Case, str, float]:
        started = time.perf_counter()
        reply = request_with_key(tokens, "POST", url, data=case.data, timeout=600)
        outcome = answer_outcome(reply.status_code, reply.headers.get("Content-Type"), reply.content)
        if case.label == "unchanged" and outcome != "image":
            outcome = f"CRASH a valid file got {outcome}"
        return case, outcome, time.perf_counter() - started

    before = sorted(w["pid"] for w in server.workers(endpoint))
    tally = Tally()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for case, outcome, seconds in pool.map(send, mixed):
            tally.add(case, outcome, seconds)
    after = sorted(w["pid"] for w in server.workers(endpoint))
    return tally, before, after


def save_crashes(tally: Tally, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for i, (case, outcome) in enumerate(tally.crashes):
        path = folder / f"crash-{i:04d}-{case.source}.bin"
        path.write_bytes(case.data)
        index.append({"file": path.name, "source": case.source, "mutation": case.label, "outcome": outcome})
    (folder / "index.json").write_text(json.dumps(index, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="random mutants through the decoder (besides the systematic ones)")
    parser.add_argument("--seed", type=int, default=None, help="default: a new one, printed")
    parser.add_argument("--handler-n", type=int, default=None, help="inputs per endpoint's handler (default n/20)")
    parser.add_argument("--live", action="store_true", help="also through a fresh TorchServe with every endpoint")
    parser.add_argument("--save", type=Path, default=ROOT / "runs" / "fuzz", help="where crashing inputs go")
    args = parser.parse_args(argv)
    seed = random.randrange(1 << 30) if args.seed is None else args.seed
    per_handler = args.n // 20 if args.handler_n is None else args.handler_n
    print(f"seed {seed} (rerun with --seed {seed})", flush=True)

    from archives.build import endpoints
    from tests.support import handler_for

    total = Tally()
    stages = [("decoder", lambda: fuzz_decode(cases(args.n, seed)))]
    stages += [(f"{name} handler, in-process", lambda i=i, name=name: fuzz_handler(handler_for(name), sample_cases(per_handler, seed + i)))
               for i, name in enumerate(endpoints(), 1)]
    for title, stage in stages:
        tally = stage()
        print(tally.report(title), flush=True)
        total.crashes += tally.crashes
    if args.live:
        from serving.server import start_isolated, stop

        server = start_isolated(Path(tempfile.mkdtemp(prefix="fuzz-")), endpoints())
        try:
            for i, name in enumerate(endpoints(), 1):
                tally, before, after = fuzz_live(server, name, sample_cases(per_handler, seed - i))
                print(tally.report(f"{name} through TorchServe") + f"\n  worker PIDs {before} -> {after}", flush=True)
                total.crashes += tally.crashes
                if before != after:
                    total.crashes.append((Case(name, "worker", b""), f"CRASH worker PIDs changed {before} -> {after}"))
        finally:
            stop(server.state)
    if total.crashes:
        save_crashes(total, args.save)
        print(f"{len(total.crashes)} crash(es); inputs saved under {args.save}")
        return 1
    print("no crash: every input came back as an image or a JSON 4xx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
