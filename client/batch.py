"""Send a whole folder of photos through one endpoint of a running restoration-serve bundle.

    python -m client.batch IN_DIR OUT_DIR --endpoint NAME [--opt key=value ...] [--format jpeg] [--workers N]
                                          [--crf 14 | --lossless]

Every image under IN_DIR (PNG, JPEG, WebP, TIFF, BMP; subfolders included) is answered into
OUT_DIR at the same relative path and stem, with the extension of the output format. Every video
(MP4, MOV, MKV, WebM, AVI) is restored frame by frame into the same container at the same path,
with its frame rate, frame count, audio, rotation and timecode (client/video.py, docs/video.md). Outputs that
already exist are skipped, so a stopped run resumes where it was; an output is written to a
``.part`` file and renamed when complete, so an interrupted write is never mistaken for a result.
503 answers and connection errors are retried with exponential backoff; an expired or replaced
key is re-read from the bundle's key file (see client/auth.py). The run ends with a summary and,
when anything failed, OUT_DIR/failures.csv with each failure's message; the exit code is then 1.

By default the server is the one ``make serve`` started: its address from config.properties and
its key from .serve/key_file.json (or $TS_TOKEN).
"""
from __future__ import annotations

import argparse
import csv
import random
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import requests
from tqdm import tqdm

from client.auth import TokenSource, is_token_rejection, request_with_key
from serving.server import ROOT, _url, read_properties

INPUT_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
OUTPUT_SUFFIX = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg", "webp": ".webp"}
FAILURES_CSV = "failures.csv"
PART_SUFFIX = ".part"


class Failure(Exception):
    """One image could not be restored. ``fatal`` ones (no such endpoint, no valid key, server gone)
    would fail every other image too, so the run stops scheduling new work."""

    def __init__(self, message: str, status: int | None = None, fatal: bool = False) -> None:
        super().__init__(message)
        self.message, self.status, self.fatal = message, status, fatal


@dataclass(frozen=True)
class Job:
    source: Path
    relative: Path  # of the source, under IN_DIR: what the summary and failures.csv name
    target: Path


@dataclass
class Summary:
    done: int = 0
    skipped: int = 0
    failures: list[tuple[Path, int | None, str]] = field(default_factory=list)
    not_attempted: int = 0  # left when a fatal failure or Ctrl-C stopped the run
    retried: int = 0

    @property
    def failed(self) -> int:
        return len(self.failures)

    def line(self) -> str:
        text = f"done {self.done}, skipped {self.skipped}, failed {self.failed}"
        text += f", not attempted {self.not_attempted} (run again to resume)" if self.not_attempted else ""
        return text + (f" ({self.retried} retries after 503 or connection errors)" if self.retried else "")


def bundle_urls(config: Path = ROOT / "config.properties") -> tuple[str, str]:
    """The inference and management addresses of the bundle that ``make serve`` starts with ``config``
    (the management one renews an expired key through the token API)."""
    props = read_properties(config)
    return _url(props["inference_address"]), _url(props["management_address"])


def plan(in_dir: Path, out_dir: Path, suffix: str | None,
         inputs: set[str] = INPUT_SUFFIXES) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Every input with a suffix in ``inputs`` with its output path (``suffix``, or the input's own when None),
    sorted; plus the inputs whose output path another input already claims (``a.png`` and ``a.jpg`` side by
    side), each with the reason."""
    out_dir = out_dir.resolve()
    jobs: list[Job] = []
    clashes: list[tuple[Path, str]] = []
    claimed: dict[Path, Path] = {}
    for source in sorted(in_dir.rglob("*")):
        if source.suffix.lower() not in inputs or not source.is_file():
            continue
        if out_dir in source.resolve().parents:  # OUT_DIR inside IN_DIR: never re-read our own outputs
            continue
        relative = source.relative_to(in_dir)
        target = out_dir / (relative if suffix is None else relative.with_suffix(suffix))
        if target in claimed:
            clashes.append((relative, f"its output {target.relative_to(out_dir)} is already {claimed[target]}'s; "
                                      "rename one of them"))
            continue
        claimed[target] = relative
        jobs.append(Job(source, relative, target))
    return jobs, clashes


class Restorer:
    """Posts one image with the run's option fields; retries what a later try can fix."""

    def __init__(self, url: str, endpoint: str, fields: dict[str, str], token: TokenSource,
                 retries: int = 6, backoff: float = 0.5, timeout: float = 600.0) -> None:
        self.endpoint_url = f"{url.rstrip('/')}/predictions/{endpoint}"
        self.endpoint, self.fields, self.token = endpoint, fields, token
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self._lock = threading.Lock()
        self.retried = 0  # 503s and connection errors tried again, for the summary
        self.sent = 0  # requests posted, retries included (a resumed video must not send finished frames again)

    def _post(self, name: str, data: bytes, fields: dict[str, str]) -> requests.Response:
        """One request; an expired or replaced key is renewed and the request sent again (client/auth.py)."""
        with self._lock:
            self.sent += 1
        try:
            return request_with_key(self.token, "POST", self.endpoint_url, files={"data": (name, data)},
                                    data=fields, timeout=self.timeout)
        except RuntimeError as exc:  # no key file (the server is not running) or the token API refused
            raise Failure(str(exc), fatal=True) from None

    def restore(self, job: Job) -> bytes:
        return self.post(job.source.name, job.source.read_bytes())

    def post(self, name: str, data: bytes, fields: dict[str, str] | None = None) -> bytes:
        """The answer to one image ``data`` (called ``name``) with ``fields`` (default: the run's options)."""
        fields = self.fields if fields is None else fields
        attempt = 0
        while True:
            try:
                reply = self._post(name, data, fields)
            except requests.ConnectionError as exc:  # ConnectTimeout included: the server may be restarting
                if attempt == self.retries:
                    raise Failure(f"no connection to {self.endpoint_url}: {exc}", fatal=True) from None
            except requests.Timeout:
                raise Failure(f"no answer within {self.timeout:.0f} s") from None
            else:
                if reply.ok:
                    return reply.content
                if is_token_rejection(reply.status_code, reply.content):
                    raise Failure(f"the server refuses the key, even renewed: {message(reply)}", reply.status_code,
                                  fatal=True)
                if reply.status_code == 404:
                    raise Failure(f"no endpoint '{self.endpoint}': {message(reply)}", 404, fatal=True)
                if reply.status_code != 503 or attempt == self.retries:
                    raise Failure(message(reply), reply.status_code)
            self._sleep(attempt)  # 503 (queue full, no worker yet) or no connection: try again later
            attempt += 1

    def _sleep(self, attempt: int) -> None:
        """Exponential backoff with jitter, so that N waiting workers do not return in step."""
        with self._lock:
            self.retried += 1
        time.sleep(min(30.0, self.backoff * 2 ** attempt) * random.uniform(0.5, 1.0))


def message(reply: requests.Response) -> str:
    """TorchServe's and the handlers' JSON ``message``, else the start of the body."""
    try:
        return str(reply.json()["message"])
    except (ValueError, KeyError, TypeError):
        return reply.text[:300].strip() or reply.reason


def write_atomically(target: Path, body: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + PART_SUFFIX)
    part.write_bytes(body)
    part.replace(target)


def run(jobs: list[Job], restorer: Restorer, workers: int, progress: bool = True) -> Summary:
    """Restore every job whose output is missing, ``workers`` requests at a time."""
    summary = Summary()
    todo = [job for job in jobs if not job.target.exists()]
    summary.skipped = len(jobs) - len(todo)
    pending: set[Future] = set()
    queue = iter(todo)
    bar = tqdm(total=len(todo), unit=" images", disable=not progress, dynamic_ncols=True)
    stop = False

    def one(job: Job) -> None:
        write_atomically(job.target, restorer.restore(job))

    def submit(pool: ThreadPoolExecutor) -> None:
        job = next(queue, None)
        if job is not None:
            future = pool.submit(one, job)
            future.job = job  # type: ignore[attr-defined]
            pending.add(future)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for _ in range(workers):  # keep N in flight, no more: a fatal error stops the run quickly
                submit(pool)
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    pending.discard(future)
                    stop = _account(future, summary) or stop
                    bar.update(1)
                    bar.set_postfix(failed=summary.failed, refresh=False)
                    if not stop:
                        submit(pool)
        except KeyboardInterrupt:
            stop = True
            for future in pending:  # running requests finish (their outputs stay whole); no new ones start
                future.cancel()
            tqdm.write("interrupted: finishing the requests in flight", file=sys.stderr)
            for future in list(pending):
                if not future.cancelled():
                    _account(future, summary)
        finally:
            bar.close()
    summary.not_attempted = len(todo) - summary.done - summary.failed
    summary.retried = restorer.retried
    return summary


def _account(future: Future, summary: Summary) -> bool:
    """Count one request (waiting for it if it still runs); True when its failure is fatal to the run."""
    job: Job = future.job  # type: ignore[attr-defined]
    try:
        future.result()
    except Failure as err:
        summary.failures.append((job.relative, err.status, err.message))
        return err.fatal
    except OSError as err:  # reading the input or writing the output
        summary.failures.append((job.relative, None, str(err)))
        return False
    summary.done += 1
    return False


def write_failures(out_dir: Path, failures: list[tuple[Path, int | None, str]]) -> Path | None:
    """OUT_DIR/failures.csv for this run (a stale one from an earlier run is removed when nothing failed)."""
    path = out_dir / FAILURES_CSV
    if not failures:
        path.unlink(missing_ok=True)
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "status", "message"])
        for relative, status, text in sorted(failures, key=lambda row: str(row[0])):
            writer.writerow([relative.as_posix(), "" if status is None else status, text])
    return path


def parse_opt(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m client.batch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("in_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--endpoint", required=True, help="superres, deblur, enhance, retouch, colorize, restore")
    parser.add_argument("--opt", type=parse_opt, action="append", default=[], metavar="KEY=VALUE",
                        help="an option field sent with every image (repeatable), e.g. ensemble=true")
    parser.add_argument("--format", choices=sorted(OUTPUT_SUFFIX), default="png", help="output format (default png)")
    parser.add_argument("--workers", type=int, default=4, help="requests in flight (default 4)")
    parser.add_argument("--url", help="inference address (default: the bundle's, from --config; then the management "
                        "address that renews keys comes from server.json beside the key file or $TS_MANAGEMENT_URL)")
    parser.add_argument("--config", type=Path, default=ROOT / "config.properties")
    parser.add_argument("--key-file", type=Path,
                        help="TorchServe key file (default: $TS_KEY_FILE or .serve/key_file.json)")
    parser.add_argument("--retries", type=int, default=6, help="retries of a 503 or connection error (default 6)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for one answer (default 600)")
    parser.add_argument("--crf", type=int, help="videos: encoder quality, lower is better (default visually "
                        "lossless: 14 for H.264, 15 for VP9)")
    parser.add_argument("--lossless", action="store_true", help="videos: FFV1 in .mkv, the answers bit for bit")
    parser.add_argument("--max-frames", type=int, metavar="N", help="videos: send at most N frames this run, "
                        "then stop (the next run resumes from the frames kept)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if not args.in_dir.is_dir():
        parser.error(f"{args.in_dir} is not a folder")
    if args.workers < 1:
        parser.error("--workers must be at least 1")

    fields = dict(args.opt)
    fields["format"] = "jpeg" if args.format == "jpg" else args.format
    url, management_url = (args.url, None) if args.url else bundle_urls(args.config)
    restorer = Restorer(url, args.endpoint, fields, TokenSource(args.key_file, management_url=management_url),
                        retries=args.retries, timeout=args.timeout)
    from client import video  # imports this module: here, not at the top

    jobs, clashes = plan(args.in_dir, args.out_dir, OUTPUT_SUFFIX[args.format])
    encoding = video.Encoding(crf=args.crf, lossless=args.lossless)
    clips, clip_clashes = plan(args.in_dir, args.out_dir, video.target_suffix(encoding), video.VIDEO_SUFFIXES)
    summary = run(jobs, restorer, args.workers, progress=not args.no_progress)
    if summary.not_attempted:  # stopped by Ctrl-C or a fatal failure: the clips wait for the next run
        summary.not_attempted += len(clips)
    else:
        video.run_videos(clips, restorer, args.workers, encoding, args.out_dir, summary, args.max_frames,
                         progress=not args.no_progress)
    summary.failures.extend((relative, None, reason) for relative, reason in clashes + clip_clashes)
    report = write_failures(args.out_dir, summary.failures)
    print(summary.line() + (f"; failures: {report}" if report else ""))
    return 1 if summary.failed or summary.not_attempted else 0


if __name__ == "__main__":
    sys.exit(main())
