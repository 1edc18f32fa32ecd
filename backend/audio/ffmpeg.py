"""The ffmpeg executable, for what libsndfile cannot read (WebM and MP4/M4A recordings, Ogg/FLAC, ...).

FFmpeg runs only as a separate program, never as libraries inside voicegate: the builds that ship (PyAV's
wheels, imageio-ffmpeg's binary) link GPL encoders, which a process may call but not load. The executable
is found once at start-up (`use_ffmpeg`); each decode is one child fed the bytes on a pipe, whose account
of the input is read before any sample is, and which is killed (and reaped) the moment its time is up or
its caller refuses what it hears.
"""

from __future__ import annotations

import functools
import os
import re
import selectors
import shutil
import struct
import subprocess
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Final

import imageio_ffmpeg
import numpy as np
import numpy.typing as npt

from backend.audio.errors import UnsupportedOrCorruptAudio
from backend.errors import SettingsError

#: How long `ffmpeg -version` may take at start-up (a cold disk, a loaded machine).
VERSION_TIMEOUT_S: Final = 30.0
_MISSING: Final = (
    "no ffmpeg executable: voicegate runs it to decode WebM and M4A uploads; install Debian's ffmpeg"
    " (apt-get install ffmpeg) or the imageio-ffmpeg wheel, or set {var} to its path"
)
_PIPE_CHUNK: Final = 65536
# Sun AU, the one raw format whose header says rate and channels: magic, data offset, data size, encoding
# (6: 32-bit float, big-endian), rate, channels, all big-endian 32-bit.
_AU_MAGIC: Final = b".snd"
_AU_HEADER: Final = 24
_AU_FLOAT32: Final = 6
# Lines of ffmpeg's account of its input (`av_dump_format`), e.g.
#   "  Duration: 00:00:14.47, start: 0.007000, bitrate: N/A"
#   "  Stream #0:0[0x1](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, mono, fltp, 101 kb/s (default)"
_DURATION: Final = re.compile(r"^  Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_STREAM: Final = re.compile(r"^  Stream #0:\d+\S*: (Audio|Video): (\w+)(.*)$")
#: The lines that start ffmpeg's account of its input, and that follow it.
_INPUT: Final = "Input #0,"
_END_OF_INPUT: Final = "Stream mapping:"
_KEPT_LINES: Final = 20
_LONGEST_LINE: Final = 4096

#: The setting that names the executable (`Settings.ffmpeg`'s variable; a test holds the two together).
FFMPEG_VARIABLE: Final = "VOICEGATE_FFMPEG"
_chosen: Path | None = None


@functools.cache
def find_ffmpeg(configured: Path | None = None) -> Path:
    """The ffmpeg executable: ``configured`` (VOICEGATE_FFMPEG) when set, else Debian's ``ffmpeg`` on PATH, else
    the static binary of the imageio-ffmpeg wheel (``imageio_ffmpeg.get_ffmpeg_exe()``), which must answer
    ``-version``.

    Raises SettingsError (one line: what to install or set) when none is found, or when the one found (or
    configured: it is never passed over for another) does not run.
    """
    if configured is not None:
        return _runs(configured, f"{FFMPEG_VARIABLE}: ")
    on_path = shutil.which("ffmpeg")
    if on_path is not None:
        return _runs(Path(on_path), "ffmpeg on PATH: ")
    try:
        bundled = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        raise SettingsError(_MISSING.format(var=FFMPEG_VARIABLE)) from None
    return _runs(Path(bundled), "imageio-ffmpeg's ffmpeg: ")


def use_ffmpeg(configured: Path | None) -> Path:
    """At start-up of the API and the workers: find ffmpeg (see `find_ffmpeg`, which raises SettingsError) and
    make it the one this process decodes with."""
    global _chosen  # noqa: PLW0603 - a fact of the process, settled once at start-up, read deep in decoding
    _chosen = find_ffmpeg(configured)
    return _chosen


def ffmpeg_executable() -> Path:
    """The executable start-up chose; in a process that did not start through `use_ffmpeg` (a script, a
    test), the one `find_ffmpeg` finds by default."""
    return _chosen if _chosen is not None else find_ffmpeg()


def _runs(path: Path, what: str) -> Path:
    try:
        answer = subprocess.run(  # noqa: S603 - the operator's or the system's ffmpeg, no shell
            [str(path), "-hide_banner", "-version"], capture_output=True, timeout=VERSION_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SettingsError(f"{what}{path} does not run: {exc}") from None
    if answer.returncode != 0 or not answer.stdout.startswith(b"ffmpeg version"):
        raise SettingsError(f"{what}{path} is not a working ffmpeg (`-version` exited {answer.returncode})")
    return path


@dataclass(frozen=True, slots=True)
class InputInfo:
    """What ffmpeg says of its input before decoding it: the first audio stream's codec (None without one),
    whether a video track (not cover art) rides along, and the duration the container claims."""

    codec: str | None
    has_video: bool
    duration_s: float | None


class FfmpegDecoder:
    """One ffmpeg child decoding ``data`` through ``demuxer`` (forced: untrusted bytes are never probed into
    another format) to 32-bit float samples of the first audio stream, at its own rate and channels.

    Use as a context manager: ``input_info()``, then ``output_format()``, then ``read_block()`` until it
    gives nothing. Leaving the block, however, kills the child if it still runs, reaps it and removes what
    it was given. Past ``timeout_s`` (from the start), or when ffmpeg fails, the calls raise
    UnsupportedOrCorruptAudio.

    ``seekable`` input (an MP4 whose index follows its media) is written to a file in a private temporary
    directory; anything else is fed on stdin.
    """

    def __init__(self, data: bytes, demuxer: str, *, timeout_s: float, seekable: bool = False) -> None:
        self._deadline = time.monotonic() + timeout_s
        self._timeout_s = timeout_s
        self._data = memoryview(data)
        self._fed = 0
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        source = "pipe:0"
        if seekable:
            self._workdir = tempfile.TemporaryDirectory(prefix="voicegate-ffmpeg-")
            path = Path(self._workdir.name) / "input"
            path.write_bytes(data)
            source, self._data = f"file:{path}", memoryview(b"")
        try:
            self._process = subprocess.Popen(  # noqa: S603 - our arguments, no shell
                [
                    *(str(ffmpeg_executable()), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"),
                    *("-xerror", "-protocol_whitelist", "file,pipe", "-f", demuxer, "-i", source),
                    *("-map", "0:a:0", "-map_metadata", "-1", "-c:a", "pcm_f32be", "-f", "au", "pipe:1"),
                ],
                stdin=subprocess.PIPE if self._data else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except BaseException:
            if self._workdir is not None:
                self._workdir.cleanup()
            raise
        self._selector = selectors.DefaultSelector()
        self._register(self._process.stderr, selectors.EVENT_READ, "stderr")
        self._register(self._process.stdin, selectors.EVENT_WRITE, "stdin")
        self._stdout_open = self._stderr_open = True
        self._reading_stdout = False
        self._line = b""
        self._lines: deque[str] = deque(maxlen=_KEPT_LINES)
        self._opened = self._input_said = self._video = False
        self._codec: str | None = None
        self._duration: float | None = None
        self._pending = b""
        self._channels = 0

    def __enter__(self) -> FfmpegDecoder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._selector.close()
        for pipe in (self._process.stdin, self._process.stdout, self._process.stderr):
            if pipe is not None:
                pipe.close()
        if self._workdir is not None:
            self._workdir.cleanup()

    def input_info(self) -> InputInfo:
        """ffmpeg's account of the input, read (feeding it the bytes meanwhile) before any sample."""
        while not self._input_said and self._stderr_open:
            self._step()
        if not self._opened:  # ffmpeg could not read the container at all: it has ended, and says why
            self._finish()
        return InputInfo(self._codec, self._video, self._duration)

    def output_format(self) -> tuple[int, int]:
        """The decoded samples' rate and channel count, from the header of ffmpeg's output."""
        header = b""
        while len(header) < _AU_HEADER and self._stdout_open:
            header += self._read_stdout()
        if len(header) < _AU_HEADER:
            self._finish()
            raise UnsupportedOrCorruptAudio("unsupported or corrupt audio: no audio could be decoded")
        magic, offset, _, encoding, rate, channels = struct.unpack(">4sIIIII", header[:_AU_HEADER])
        if magic != _AU_MAGIC or encoding != _AU_FLOAT32 or offset < _AU_HEADER or channels < 1:
            raise UnsupportedOrCorruptAudio("unsupported or corrupt audio", facts={"reason": "unexpected output"})
        while len(header) < offset and self._stdout_open:
            header += self._read_stdout()
        self._pending, self._channels = header[offset:], channels
        return rate, channels

    def read_block(self) -> npt.NDArray[np.float32]:
        """The next samples, shape (frames, channels); empty once ffmpeg has finished well (it raises when
        ffmpeg failed)."""
        while self._stdout_open:
            data = self._pending + self._read_stdout()
            whole = len(data) - len(data) % (4 * self._channels)
            self._pending = data[whole:]
            if whole:
                return np.frombuffer(data[:whole], dtype=">f4").astype(np.float32).reshape(-1, self._channels)
        self._finish()
        return np.zeros((0, self._channels), dtype=np.float32)

    def _finish(self) -> None:
        """Wait for ffmpeg to end (within the time limit); refuse the input when it failed."""
        while self._stderr_open:
            self._step()
        try:
            status = self._process.wait(max(0.0, self._deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise self._timed_out() from None
        if status != 0:
            raise UnsupportedOrCorruptAudio("unsupported or corrupt audio", facts={"reason": self._reason(status)})

    def _read_stdout(self) -> bytes:
        if not self._reading_stdout:
            self._register(self._process.stdout, selectors.EVENT_READ, "stdout")
            self._reading_stdout = True
        return self._step()

    def _step(self) -> bytes:
        """Wait (at most until the deadline) for a pipe to be ready and serve it: feed stdin, take stderr's
        lines; return what stdout gave (EOF closes it)."""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise self._timed_out()
        out = b""
        for key, _ in self._selector.select(remaining):
            if key.data == "stdin":
                self._feed(key.fd)
                continue
            chunk = os.read(key.fd, _PIPE_CHUNK)
            if key.data == "stdout":
                out, self._stdout_open = chunk, bool(chunk)
            else:
                self._take_stderr(chunk)
                self._stderr_open = bool(chunk)
            if not chunk:
                self._selector.unregister(key.fileobj)
        return out

    def _feed(self, fd: int) -> None:
        try:
            self._fed += os.write(fd, self._data[self._fed : self._fed + _PIPE_CHUNK])
        except BrokenPipeError:  # ffmpeg stopped reading: it says why on stderr
            self._fed = len(self._data)
        if self._fed >= len(self._data) and self._process.stdin is not None:
            self._selector.unregister(self._process.stdin)
            self._process.stdin.close()

    def _take_stderr(self, chunk: bytes) -> None:
        lines = (self._line + chunk).split(b"\n") if chunk else [self._line, b""]
        self._line = lines.pop()[:_LONGEST_LINE]
        for raw in lines:
            line = raw.decode("utf-8", errors="replace").rstrip("\r")
            self._lines.append(line)
            if not self._input_said:
                self._read_input_line(line)

    def _read_input_line(self, line: str) -> None:
        if line.startswith(_END_OF_INPUT):
            self._input_said = True
        elif line.startswith(_INPUT):
            self._opened = True
        elif duration := _DURATION.match(line):
            hours, minutes, seconds = duration.groups()
            self._duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        elif stream := _STREAM.match(line):
            kind, codec, rest = stream.groups()
            if kind == "Video" and "(attached pic)" not in rest:
                self._video = True
            elif kind == "Audio" and self._codec is None:
                self._codec = codec

    def _reason(self, status: int) -> str:
        """ffmpeg's last word on what went wrong (its own message, without the file it names)."""
        for line in reversed(self._lines):
            if ": " in line and not line.startswith(" "):
                return line.rsplit(": ", 1)[1].strip()[:200]
        return f"ffmpeg exited with status {status}"

    def _timed_out(self) -> UnsupportedOrCorruptAudio:
        return UnsupportedOrCorruptAudio(
            "unsupported or corrupt audio", facts={"reason": f"decoding took longer than {self._timeout_s:g} s"}
        )

    def _register(self, pipe: IO[bytes] | None, events: int, name: str) -> None:
        if pipe is not None:
            os.set_blocking(pipe.fileno(), False)
            self._selector.register(pipe, events, name)
