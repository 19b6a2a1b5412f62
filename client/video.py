"""Video files in the batch client: every frame through the endpoint, re-encoded with the source's timing and sound.

A clip is done in two passes over the source, both with PyAV (its wheel carries FFmpeg):

1. **Restore**: frames are decoded in order and posted as lossless PNGs, ``workers`` requests in flight; each
   answer is kept as ``OUT/.batch-part/<relative path>/frames/<index>.png``. A stopped run (Ctrl-C, a crash,
   ``--max-frames``) leaves those frames, and the next run sends only the missing ones.
2. **Encode**: once every frame is answered, the source is demuxed again; each video frame is replaced by its
   answer (same pts, so the same frame rate, frame count and timing, variable rates included) and encoded in the
   same container, audio packets are remuxed untouched, and the display matrix (rotation) and timecode are kept.
   The file is written inside the part folder and renamed onto the target once complete.

See docs/video.md.
"""
from __future__ import annotations

import io
import json
import shutil
import struct
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from PIL import Image
from tqdm import tqdm

from client.batch import Failure, Job, Restorer, Summary

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi"}
PART_DIR = ".batch-part"  # under OUT_DIR: hidden, so a later run over OUT_DIR's images does not pick it up
LOSSLESS_SUFFIX = ".mkv"  # FFV1 lives in Matroska
# Visually lossless defaults: x264's CRF 14 and libvpx-vp9's 15 (its 0-63 scale with bitrate unconstrained).
DEFAULT_CRF = {"libx264": 14, "libvpx-vp9": 15}
# Keys the muxer writes itself; copying the source's would claim the wrong brand or encoder.
MUXER_KEYS = {"major_brand", "minor_version", "compatible_brands", "encoder"}


@dataclass(frozen=True)
class Encoding:
    crf: int | None = None  # None: the codec's visually lossless default
    lossless: bool = False  # FFV1 in mkv, RGB planes: the answers bit for bit

    def codec(self, suffix: str) -> str:
        if self.lossless:
            return "ffv1"
        return "libvpx-vp9" if suffix == ".webm" else "libx264"  # webm allows only VP8/VP9/AV1

    def options(self, codec: str, suffix: str) -> dict[str, str]:
        if codec == "ffv1":
            return {"slicecrc": "1"}  # a CRC per slice: damage in the archive copy is detectable
        crf = str(DEFAULT_CRF[codec] if self.crf is None else self.crf)
        if codec == "libvpx-vp9":
            return {"crf": crf, "b": "0", "row-mt": "1"}
        # AVI stores no presentation times: B-frames (reordered) would shift the timing there
        return {"crf": crf, "bf": "0"} if suffix == ".avi" else {"crf": crf}


def target_suffix(encoding: Encoding) -> str | None:
    """The outputs' suffix for ``batch.plan``: the source's own (None), or mkv for FFV1."""
    return LOSSLESS_SUFFIX if encoding.lossless else None


def part_folder(out_dir: Path, job: Job) -> Path:
    return out_dir.resolve() / PART_DIR / job.relative


def frame_path(part: Path, index: int) -> Path:
    return part / "frames" / f"{index:08d}.png"


def _identity(job: Job, restorer: Restorer) -> dict:
    """What the kept frames depend on: a changed source, endpoint or option invalidates them."""
    stat = job.source.stat()
    return {"source_size": stat.st_size, "source_mtime_ns": stat.st_mtime_ns, "endpoint": restorer.endpoint,
            "fields": restorer.fields}


def prepare_part(part: Path, identity: dict) -> None:
    """The part folder for this clip, emptied when it holds frames of another source or settings."""
    manifest = part / "source.json"
    if manifest.exists() and json.loads(manifest.read_text()) != identity:
        shutil.rmtree(part)
    (part / "frames").mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps(identity, indent=1, sort_keys=True))


def open_video(path: Path) -> av.container.InputContainer:
    """The source opened for decoding, or a Failure that says why not (what failures.csv then shows)."""
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise Failure(f"cannot read the video (truncated or not a video file?): {exc}") from None
    if not container.streams.video:
        container.close()
        raise Failure("no video stream in the file")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        container.close()
        raise Failure("no decoder for its video codec (not one this FFmpeg can read)")
    stream.thread_type = "AUTO"  # frame threads: decoding keeps up with N requests in flight
    return container


def frame_total(stream: av.video.stream.VideoStream) -> int | None:
    """Frames in the stream as the container states them (mkv and webm do not: estimated from the duration)."""
    if stream.frames:
        return stream.frames
    rate = stream.average_rate or stream.guessed_rate
    if stream.duration and stream.time_base and rate:
        return round(stream.duration * stream.time_base * rate)
    return None


def decoded_frames(container: av.container.InputContainer) -> Iterator[av.VideoFrame]:
    """Every frame of the first video stream, in presentation order; a decode error is a Failure."""
    index = 0
    try:
        for frame in container.decode(video=0):
            yield frame
            index += 1
    except av.error.FFmpegError as exc:
        raise Failure(f"cannot decode frame {index} (the file may be truncated or damaged): {exc}") from None


def rgb_of(frame: av.VideoFrame) -> np.ndarray:
    """The frame in RGB by its own matrix and range (PyAV assumes limited range: a full-range phone clip would
    lose contrast, and re-encoded by another matrix an HD clip's colours would shift)."""
    return frame.to_ndarray(format="rgb24", src_colorspace=frame.colorspace, src_color_range=frame.color_range)


def png_of(rgb: np.ndarray) -> bytes:
    """A lossless PNG of one frame for the request (level 1: zlib's fastest, the server decodes it either way)."""
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def write_atomically(target: Path, body: bytes) -> None:
    """A frame is either whole or absent: a run killed mid-write never resumes on half a PNG."""
    part = target.with_name(target.name + ".tmp")
    part.write_bytes(body)
    part.replace(target)


class FrameRestorer:
    """Posts one clip's frames, ``workers`` at a time, keeping each answer in the part folder."""

    def __init__(self, restorer: Restorer, name: str, part: Path, pool: ThreadPoolExecutor, workers: int,
                 bar: tqdm) -> None:
        self.restorer, self.name, self.part, self.pool, self.workers, self.bar = \
            restorer, name, part, pool, workers, bar
        self.fields = {**restorer.fields, "format": "png"}  # frames stay lossless until the one final encode
        self.pending: set[Future] = set()

    def _one(self, index: int, rgb: np.ndarray) -> None:
        try:
            answer = self.restorer.post(f"{self.name}#{index}.png", png_of(rgb), self.fields)
        except Failure as err:
            raise Failure(f"frame {index}: {err.message}", err.status, err.fatal) from None
        write_atomically(frame_path(self.part, index), answer)

    def submit(self, index: int, frame: av.VideoFrame) -> None:
        while len(self.pending) >= self.workers:
            self._collect(wait(self.pending, return_when=FIRST_COMPLETED).done)
        self.pending.add(self.pool.submit(self._one, index, rgb_of(frame)))

    def drain(self) -> None:
        """Wait for every request in flight (each finished one is kept), raising the first failure."""
        self._collect(wait(self.pending).done)

    def cancel(self) -> None:
        """Ctrl-C: no new request starts; the running ones finish and keep their frames."""
        for future in self.pending:
            future.cancel()
        wait(self.pending)

    def _collect(self, finished: set[Future]) -> None:
        self.pending -= finished
        for future in finished:
            future.result()  # a Failure here fails the clip; its other finished frames stay for a resume
            self.bar.update(1)


def restore_frames(job: Job, restorer: Restorer, part: Path, workers: int, frame_limit: int | None,
                   progress: bool) -> int | None:
    """Pass 1: every missing frame answered into the part folder. Returns the clip's frame count, or None when
    ``frame_limit`` new frames were sent and the run stops here (the rest on the next run)."""
    with open_video(job.source) as container:
        stream = container.streams.video[0]
        kept = len(list((part / "frames").glob("*.png")))
        bar = tqdm(total=frame_total(stream), initial=kept, unit=" frames", desc=job.relative.as_posix(),
                   disable=not progress, dynamic_ncols=True)  # tqdm's rate is frames/s, its ETA the remaining
        sent, count = 0, 0
        with bar, ThreadPoolExecutor(max_workers=workers) as pool:
            frames = FrameRestorer(restorer, job.source.name, part, pool, workers, bar)
            try:
                for count, frame in enumerate(decoded_frames(container), start=1):
                    if frame_path(part, count - 1).exists():
                        continue  # answered by an earlier run: never sent again
                    if frame_limit is not None and sent == frame_limit:
                        frames.drain()
                        return None
                    frames.submit(count - 1, frame)
                    sent += 1
                frames.drain()
            except BaseException:  # a failure or Ctrl-C: let the requests in flight land, then stop
                frames.cancel()
                raise
    if count == 0:
        raise Failure("the video stream has no frames that decode")
    return count


def display_matrix(container: av.container.InputContainer) -> list[int] | None:
    """The first frame's display matrix (rotation, flips), which FFmpeg carries over from the stream."""
    for frame in container.decode(video=0):
        data = frame.side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX)
        return list(struct.unpack("9i", bytes(data))) if data is not None else None
    return None


def copied_metadata(metadata: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in metadata.items() if key not in MUXER_KEYS}


def pixel_format(codec: str, width: int, height: int) -> str:
    """FFV1 keeps RGB (lossless); H.264/VP9 get the 4:2:0 every player decodes, 4:4:4 for an odd size
    (4:2:0 needs even sides)."""
    if codec == "ffv1":
        return "bgr0"
    return "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"


def add_video_stream(output: av.container.OutputContainer, source: av.video.stream.VideoStream, codec: str,
                     suffix: str, encoding: Encoding, size: tuple[int, int],
                     matrix: list[int] | None) -> av.video.stream.VideoStream:
    rate = source.average_rate or source.guessed_rate or Fraction(25)
    stream = output.add_stream(codec, rate=rate, options=encoding.options(codec, suffix))
    stream.width, stream.height = size
    stream.pix_fmt = pixel_format(codec, *size)
    stream.codec_context.time_base = source.time_base  # frames keep the source's pts exactly
    if codec != "ffv1":  # YUV again: tagged as the source was, and converted by the same matrix (answer_frame)
        for name in ("colorspace", "color_range", "color_primaries", "color_trc"):
            setattr(stream.codec_context, name, getattr(source.codec_context, name))
    stream.metadata.update(copied_metadata(source.metadata))
    if matrix is not None:
        stream.set_display_matrix(matrix)
    return stream


def encode(job: Job, part: Path, count: int, encoding: Encoding, progress: bool = False) -> Path:
    """Pass 2: the answers encoded in the source's container, its audio remuxed; returns the finished file
    (still inside the part folder)."""
    result = part / f"output{job.target.suffix}"
    width, height = Image.open(frame_path(part, 0)).size  # the endpoint's scale, as it answered
    with open_video(job.source) as source:
        matrix = display_matrix(source)
    with open_video(job.source) as source, av.open(str(result), "w") as output:
        video_in = source.streams.video[0]
        output.metadata.update(copied_metadata(source.metadata))
        timecode = video_in.metadata.get("timecode") or source.metadata.get("timecode")
        if timecode:
            output.metadata["timecode"] = timecode  # mov/mp4 write it as their tmcd track
        suffix = job.target.suffix.lower()
        codec = encoding.codec(suffix)
        video_out = add_video_stream(output, video_in, codec, suffix, encoding, (width, height), matrix)
        audio = {stream.index: output.add_stream_from_template(stream) for stream in source.streams.audio}
        index = 0
        bar = tqdm(total=count, unit=" frames", desc=f"encoding {job.relative.as_posix()}", disable=not progress,
                   dynamic_ncols=True)  # a 4x answer of 720p is 5K: its encode takes a while too
        for packet in source.demux(video_in, *source.streams.audio):
            if packet.stream.type == "audio":
                if packet.dts is not None:  # the demuxer's empty flush packet carries nothing
                    packet.stream = audio[packet.stream.index]
                    output.mux(packet)
                continue
            for frame in video_in.decode(packet):
                if index < count:
                    output.mux(video_out.encode(answer_frame(part, index, frame, video_in, video_out)))
                    bar.update(1)
                index += 1
        output.mux(video_out.encode(None))
        bar.close()
    if index != count:
        raise Failure(f"the second decode gave {index} frames, the first {count}: the file changed meanwhile?")
    return result


def answer_frame(part: Path, index: int, source: av.VideoFrame, stream: av.video.stream.VideoStream,
                 output: av.video.stream.VideoStream) -> av.VideoFrame:
    """Frame ``index``'s answer in the output's pixel format, by the source frame's matrix and range, with its
    timing (pts in the source's time base)."""
    rgb = np.asarray(Image.open(frame_path(part, index)).convert("RGB"))
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    if output.pix_fmt.startswith("yuv"):  # FFV1's RGB needs no matrix
        frame = frame.reformat(format=output.pix_fmt, dst_colorspace=source.colorspace,
                               dst_color_range=source.color_range)
        frame.colorspace, frame.color_range = source.colorspace, source.color_range
    rate = stream.average_rate or Fraction(25)
    frame.pts = source.pts if source.pts is not None else round(index / rate / stream.time_base)
    frame.time_base = stream.time_base
    return frame


def restore_video(job: Job, restorer: Restorer, workers: int, encoding: Encoding, out_dir: Path,
                  frame_limit: int | None = None, progress: bool = True) -> bool:
    """One clip, resumed from its part folder; True when its output is written, False when ``frame_limit``
    stopped it first."""
    part = part_folder(out_dir, job)
    prepare_part(part, _identity(job, restorer))
    count = restore_frames(job, restorer, part, workers, frame_limit, progress)
    if count is None:
        return False
    try:
        result = encode(job, part, count, encoding, progress)
    except av.error.FFmpegError as exc:
        raise Failure(f"cannot encode {job.target.suffix} with {encoding.codec(job.target.suffix.lower())}: {exc}") \
            from None
    job.target.parent.mkdir(parents=True, exist_ok=True)
    result.replace(job.target)  # the one write of the final file: a rename within OUT_DIR, atomic
    shutil.rmtree(part)
    return True


def run_videos(jobs: list[Job], restorer: Restorer, workers: int, encoding: Encoding, out_dir: Path,
               summary: Summary, frame_limit: int | None = None, progress: bool = True) -> None:
    """Every clip whose output is missing, one after another (each with ``workers`` frames in flight), counted
    into ``summary``. A broken clip is a failure and the run goes on; a fatal one stops it."""
    todo = [job for job in jobs if not job.target.exists()]
    summary.skipped += len(jobs) - len(todo)
    for position, job in enumerate(todo):
        try:
            finished = restore_video(job, restorer, workers, encoding, out_dir, frame_limit, progress)
        except Failure as err:
            summary.failures.append((job.relative, err.status, err.message))
            if err.fatal:
                summary.not_attempted += len(todo) - position - 1
                break
            continue
        except OSError as err:  # reading the source, writing the frames or the output
            summary.failures.append((job.relative, None, str(err)))
            continue
        except KeyboardInterrupt:
            tqdm.write("interrupted: the finished frames are kept, run again to resume", file=sys.stderr)
            summary.not_attempted += len(todo) - position
            break
        if finished:
            summary.done += 1
        else:
            summary.not_attempted += 1
    summary.retried = restorer.retried
    _clean_parts(out_dir)


def _clean_parts(out_dir: Path) -> None:
    """The part folder goes once no clip has work kept in it (empty subfolders are left by finished clips)."""
    root = out_dir.resolve() / PART_DIR
    if root.is_dir() and not any(p.is_file() for p in root.rglob("*")):
        shutil.rmtree(root)

