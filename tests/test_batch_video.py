"""Videos in the batch client (client/video.py) against a live TorchServe: clips made here with PyAV (a few 64x48
frames, an audio track, rotation and timecode), restored through superres (x4), resumed after a stop, and broken
files reported while the others are done."""
from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from client.auth import TokenSource
from client.batch import Restorer, Summary, main, plan
from client.video import PART_DIR, VIDEO_SUFFIXES, Encoding, run_videos, target_suffix
from tests.support import ROOT, interrupt_after, photo, png_bytes

FRAMES, RATE, SIZE, SCALE = 5, 12, (64, 48), 4  # superres answers x4
BT709_LIMITED = (1, 1)  # AVCOL_SPC_BT709, AVCOL_RANGE_MPEG: an HD camera's tags (x264 writes none by default)


def make_clip(path: Path, codec: str = "libx264", audio: str | None = "aac", frames: int = FRAMES,
              rotation: int | None = None, timecode: str | None = None, colour: tuple[int, int] | None = None) -> None:
    """A short clip: photo-like frames, a sine tone for ``audio`` (None: no audio track), ``colour`` the
    (matrix, range) it is converted by and tagged with (FFmpeg's numbers; None: untagged)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        if timecode:
            out.metadata["timecode"] = timecode
        video = out.add_stream(codec, rate=RATE)
        video.width, video.height, video.pix_fmt = *SIZE, "yuv420p"
        if rotation is not None:
            video.set_display_rotation(rotation)
        if colour is not None:
            video.codec_context.colorspace, video.codec_context.color_range = colour
        sound = None
        if audio:
            sound = out.add_stream(audio, rate=48000 if audio == "libopus" else 8000)
            sound.layout = "mono"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.asarray(photo(*SIZE, seed=i)), format="rgb24")
            if colour is not None:
                frame = frame.reformat(format="yuv420p", dst_colorspace=colour[0], dst_color_range=colour[1])
                frame.colorspace, frame.color_range = colour
            out.mux(video.encode(frame))
        if sound is not None:
            t = np.arange(sound.rate * frames // RATE) / sound.rate
            tone = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                              format="flt", layout="mono")
            tone.sample_rate, tone.pts = sound.rate, 0
            out.mux(sound.encode(tone))
            out.mux(sound.encode(None))
        out.mux(video.encode(None))


def probe(path: Path) -> dict:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(video=0))
        return {"frames": len(frames), "rate": stream.average_rate, "size": (stream.width, stream.height),
                "rotation": frames[0].rotation, "pts_seconds": [float(f.time) for f in frames],
                "timecode": stream.metadata.get("timecode"),
                "colour": (stream.codec_context.colorspace, stream.codec_context.color_range)}


def audio_packets(path: Path) -> list[tuple[bytes, int]]:
    with av.open(str(path)) as container:
        return [(bytes(p), p.pts) for p in container.demux(audio=0) if p.dts is not None]


def decoded_rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def args(live, in_dir: Path, out_dir: Path, *extra: str) -> list[str]:
    return [str(in_dir), str(out_dir), "--url", live.server.inference_url, "--key-file", str(live.server.key_file),
            "--no-progress", "--endpoint", "superres", "--workers", "3", *extra]


def test_clips_keep_their_timing_sound_rotation_and_timecode(live, tmp_path, capsys):
    in_dir, out = tmp_path / "in", tmp_path / "out"
    make_clip(in_dir / "phone.mp4", rotation=90, timecode="01:02:03:04", colour=BT709_LIMITED)
    make_clip(in_dir / "web" / "clip.webm", codec="libvpx-vp9", audio="libopus")
    (in_dir / "still.png").write_bytes(png_bytes(photo(*SIZE, seed=7)))  # an image beside the clips
    assert main(args(live, in_dir, out)) == 0
    assert "done 3, skipped 0, failed 0" in capsys.readouterr().out
    for relative in ("phone.mp4", "web/clip.webm"):
        source, restored = probe(in_dir / relative), probe(out / relative)
        assert restored["frames"] == source["frames"] == FRAMES
        assert restored["rate"] == source["rate"] == RATE
        assert restored["pts_seconds"] == source["pts_seconds"]
        assert restored["size"] == (SIZE[0] * SCALE, SIZE[1] * SCALE)
        assert audio_packets(out / relative) == audio_packets(in_dir / relative) != []
    assert probe(out / "phone.mp4")["rotation"] == 90
    assert probe(out / "phone.mp4")["timecode"] == "01:02:03:04"
    assert probe(in_dir / "phone.mp4")["colour"] == probe(out / "phone.mp4")["colour"] == BT709_LIMITED
    assert Image.open(out / "still.png").size == (SIZE[0] * SCALE, SIZE[1] * SCALE)
    assert not (out / PART_DIR).exists()
    assert main(args(live, in_dir, out)) == 0  # a second run finds every output and sends nothing
    assert "done 0, skipped 3" in capsys.readouterr().out


def direct_answers(live, clip: Path) -> list[np.ndarray]:
    """The endpoint's answer to each decoded frame sent on its own, as an uninterrupted frame-by-frame run gets."""
    answers = []
    for rgb in decoded_rgb(clip):
        reply = live.predict("superres", png_bytes(Image.fromarray(rgb)))
        assert reply.ok, reply.text
        answers.append(np.asarray(Image.open(io.BytesIO(reply.content)).convert("RGB")))
    return answers


def test_a_stopped_clip_resumes_without_resending_its_finished_frames(live, tmp_path):
    in_dir, out = tmp_path / "in", tmp_path / "out"
    make_clip(in_dir / "take.mkv", timecode="10:00:00:00")
    encoding = Encoding(lossless=True)
    jobs, _ = plan(in_dir, out, target_suffix(encoding), VIDEO_SUFFIXES)
    assert [job.target for job in jobs] == [out / "take.mkv"]

    def restore(frame_limit: int | None) -> tuple[Summary, Restorer]:
        restorer = Restorer(live.server.inference_url, "superres", {}, TokenSource(live.server.key_file))
        summary = Summary()
        # one in flight: superres batches concurrent requests, which may move an answer by 1 level (docs/video.md),
        # and this test compares the frames exactly with answers to requests sent one at a time
        run_videos(jobs, restorer, 1, encoding, out, summary, frame_limit=frame_limit, progress=False)
        return summary, restorer

    stopped, first = restore(frame_limit=2)
    assert (stopped.done, stopped.not_attempted, first.sent) == (0, 1, 2)
    assert not (out / "take.mkv").exists()
    assert len(list((out / PART_DIR).rglob("*.png"))) == 2

    resumed, second = restore(frame_limit=None)
    assert (resumed.done, resumed.failed, second.sent) == (1, 0, FRAMES - 2)  # only the missing frames sent
    assert not (out / PART_DIR).exists()
    written = decoded_rgb(out / "take.mkv")  # FFV1: the answers bit for bit
    assert len(written) == FRAMES
    assert all(np.array_equal(a, b) for a, b in zip(written, direct_answers(live, in_dir / "take.mkv")))
    assert audio_packets(out / "take.mkv") == audio_packets(in_dir / "take.mkv") != []


def test_ctrl_c_mid_clip_keeps_the_finished_frames_and_the_same_command_resumes(live, tmp_path):
    in_dir, out = tmp_path / "in", tmp_path / "out"
    make_clip(in_dir / "long.mp4", frames=40)
    command = [sys.executable, "-m", "client.batch", *args(live, in_dir, out)[:-2], "--workers", "1"]
    first = interrupt_after(command, ROOT, out)
    stdout, stderr = first.stdout, first.stderr
    kept = len(list((out / PART_DIR).rglob("*.png")))
    assert first.returncode == 1 and "interrupted" in stderr, (stdout, stderr)
    assert "not attempted 1" in stdout and 3 <= kept < 40 and not (out / "long.mp4").exists()
    assert not list(out.rglob("*.tmp"))  # no half-written frame

    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0 and "done 1" in second.stdout, second.stdout + second.stderr
    assert probe(out / "long.mp4")["frames"] == 40 and not (out / PART_DIR).exists()


def test_broken_clips_are_reported_and_the_others_done(live, tmp_path, capsys):
    in_dir, out = tmp_path / "in", tmp_path / "out"
    make_clip(in_dir / "good.mov", audio=None, frames=3)
    make_clip(in_dir / "whole.mp4")
    data = (in_dir / "whole.mp4").read_bytes()
    (in_dir / "truncated.mp4").write_bytes(data[: len(data) // 2])  # mp4 keeps its index at the end: gone
    (in_dir / "whole.mp4").unlink()
    with av.open(str(in_dir / "sound-only.mkv"), "w") as sound_only:  # an audio track and no video
        stream = sound_only.add_stream("pcm_s16le", rate=8000)
        stream.layout = "mono"
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        samples.sample_rate = 8000
        sound_only.mux(stream.encode(samples))
    (in_dir / "noise.avi").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    make_clip(in_dir / "h264.mkv", audio=None, frames=2)  # its codec renamed to one no FFmpeg knows
    data = (in_dir / "h264.mkv").read_bytes()
    assert data.count(b"V_MPEG4/ISO/AVC") == 1
    (in_dir / "unknown-codec.mkv").write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/QQQ"))
    (in_dir / "h264.mkv").unlink()
    assert main(args(live, in_dir, out, "--crf", "30")) == 1
    assert "done 1, skipped 0, failed 4" in capsys.readouterr().out
    with (out / "failures.csv").open(newline="") as f:
        rows = {row["path"]: row["message"] for row in csv.DictReader(f)}
    assert set(rows) == {"truncated.mp4", "sound-only.mkv", "noise.avi", "unknown-codec.mkv"}
    assert rows["unknown-codec.mkv"].startswith("no decoder for its video codec")
    assert "cannot read the video" in rows["truncated.mp4"] and "cannot read the video" in rows["noise.avi"]
    assert rows["sound-only.mkv"] == "no video stream in the file"
    assert probe(out / "good.mov")["frames"] == 3


@pytest.mark.parametrize("extra, flags", [("CRF=18", "--crf 18"), ("LOSSLESS=1", "--lossless")])
def test_make_batch_passes_the_video_quality(extra, flags):
    make = shutil.which("make")
    # Not a sub-make of `make test`: its MAKELEVEL would add "Entering/Leaving directory" lines.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    done = subprocess.run([make, "--no-print-directory", "-n", "batch", "IN=a", "OUT=b", "ENDPOINT=deblur", extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(flags), done.stdout
