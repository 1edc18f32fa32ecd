"""The ffmpeg executable: found at start-up (or a one-line error), run as a child that never outlives a decode
nor its time, fed through pipes (a private file only for an M4A indexed at its end, removed after), and no
FFmpeg library ever mapped into the process."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from backend.audio import decode, ffmpeg
from backend.audio.decode import decode_audio
from backend.audio.errors import AudioRejected
from backend.audio.ffmpeg import FFMPEG_VARIABLE
from backend.errors import SettingsError
from backend.settings import env_var, settings_from_env
from devkit.audio_corpus import RATE, encode, speech_mono, tone, wav_bytes

ROOT = Path(__file__).resolve().parents[3]
# FFmpeg's libraries (PyAV's wheel maps them on `import av`) and the GPL encoders they link.
FFMPEG_LIBRARIES = re.compile(r"/lib(av(codec|format|util|filter|device)|sw(resample|scale)|postproc|x26[45])\b")


@pytest.fixture(autouse=True)
def _fresh_search(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test finds ffmpeg anew, and leaves the process's choice as it was."""
    monkeypatch.setattr(ffmpeg, "_chosen", None)
    ffmpeg.find_ffmpeg.cache_clear()
    yield
    ffmpeg.find_ffmpeg.cache_clear()


def script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def children() -> set[int]:
    """This process's child processes (a zombie is one until it is reaped)."""
    tasks = Path(f"/proc/{os.getpid()}/task")
    return {int(pid) for listing in tasks.glob("*/children") for pid in listing.read_text().split()}


def test_ffmpeg_on_path_comes_before_the_wheels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = imageio_ffmpeg.get_ffmpeg_exe()
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ffmpeg.find_ffmpeg() == Path(real)  # none on PATH: the imageio-ffmpeg wheel's
    ffmpeg.find_ffmpeg.cache_clear()
    on_path = script(tmp_path / "ffmpeg", f'exec "{real}" "$@"')
    assert ffmpeg.find_ffmpeg() == on_path


def test_the_configured_ffmpeg_is_the_one_decoding_runs(tmp_path: Path, corpus: dict[str, bytes]) -> None:
    calls = tmp_path / "calls"
    wrapper = script(tmp_path / "my-ffmpeg", f'echo "$@" >> "{calls}"\nexec "{imageio_ffmpeg.get_ffmpeg_exe()}" "$@"')
    settings = settings_from_env({"VOICEGATE_FFMPEG": str(wrapper)})
    assert ffmpeg.use_ffmpeg(settings.ffmpeg) == wrapper
    assert decode_audio(corpus["speech.webm"]).codec == "opus"
    assert "-f matroska -i pipe:0" in calls.read_text()


def test_without_ffmpeg_start_up_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_wheel_binary() -> str:
        raise RuntimeError("No ffmpeg exe could be found.")

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", no_wheel_binary)
    with pytest.raises(SettingsError) as caught:
        ffmpeg.use_ffmpeg(None)
    assert str(caught.value) == (
        "no ffmpeg executable: voicegate runs it to decode WebM and M4A uploads; install Debian's ffmpeg"
        " (apt-get install ffmpeg) or the imageio-ffmpeg wheel, or set VOICEGATE_FFMPEG to its path"
    )
    assert ffmpeg._chosen is None


def test_a_configured_ffmpeg_that_does_not_work_is_refused_not_passed_over(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^VOICEGATE_FFMPEG: /nowhere/ffmpeg does not run: .*No such file"):
        ffmpeg.find_ffmpeg(Path("/nowhere/ffmpeg"))
    impostor = script(tmp_path / "ffmpeg", "echo 'not ffmpeg'")
    with pytest.raises(SettingsError, match=r"^VOICEGATE_FFMPEG: .*/ffmpeg is not a working ffmpeg"):
        ffmpeg.find_ffmpeg(impostor)


@pytest.mark.parametrize("command", ["up", "serve", "worker"])
def test_the_api_and_the_workers_do_not_start_without_ffmpeg(command: str, tmp_path: Path) -> None:
    env = {**os.environ, "VOICEGATE_FFMPEG": "/nowhere/ffmpeg", "VOICEGATE_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "voicegate.cli", command],
        env=env,
        capture_output=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.decode().startswith(
        "voicegate: configuration error: VOICEGATE_FFMPEG: /nowhere/ffmpeg does not run: "
    )
    assert not (tmp_path / "data").exists(), "nothing starts"


def test_a_child_past_its_time_is_killed_and_reaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hangs = script(tmp_path / "ffmpeg", "exec sleep 60")
    monkeypatch.setattr(ffmpeg, "_chosen", hangs)
    monkeypatch.setattr(decode, "FFMPEG_TIMEOUT_S", 0.5)
    before = children()
    with pytest.raises(AudioRejected) as caught:
        decode_audio(encode(speech_mono(3.0), RATE, "webm", "libopus"))
    assert (caught.value.code, caught.value.detail) == ("unsupported_audio", "unsupported or corrupt audio")
    assert caught.value.facts == {"reason": "decoding took longer than 0.5 s"}
    assert children() == before


def test_a_child_decoding_past_a_bound_is_killed_and_reaped(corpus: dict[str, bytes]) -> None:
    before = children()
    with pytest.raises(AudioRejected) as caught:
        decode_audio(corpus["bomb_unknown_length.flac"], max_duration_s=10.0)  # libsndfile hands it to ffmpeg
    assert caught.value.code == "sample_too_long"
    assert caught.value.facts["decodedS"] < 20.0  # of the 3600 s it would have gone on to
    assert children() == before


@pytest.fixture
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, int]]:
    """The temporary directories made meanwhile (all under `tmp_path`), with their permissions."""
    made: list[tuple[Path, int]] = []
    real = tempfile.TemporaryDirectory

    def watched(*args: object, **kwargs: object) -> tempfile.TemporaryDirectory[str]:
        workdir = real(*args, **kwargs)
        made.append((Path(workdir.name), stat.S_IMODE(Path(workdir.name).stat().st_mode)))
        return workdir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(tempfile, "TemporaryDirectory", watched)
    return made


def test_an_m4a_indexed_at_its_end_is_read_from_a_private_file_removed_after(
    corpus: dict[str, bytes], private_dirs: list[tuple[Path, int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert decode_audio(corpus["speech.m4a"]).duration_s == pytest.approx(14.5, abs=0.9)
    with pytest.raises(AudioRejected):
        decode_audio(corpus["truncated.m4a"])
    monkeypatch.setattr(decode, "FFMPEG_TIMEOUT_S", 0.0)
    with pytest.raises(AudioRejected, match="unsupported or corrupt audio"):
        decode_audio(corpus["speech.m4a"])
    assert [(workdir.parent, mode) for workdir, mode in private_dirs] == [(tmp_path, 0o700)] * 3
    assert list(tmp_path.iterdir()) == []


def test_an_m4a_indexed_first_and_the_rest_go_through_pipes(
    corpus: dict[str, bytes], private_dirs: list[tuple[Path, int]]
) -> None:
    faststart = encode(speech_mono(4.0), RATE, "ipod", "aac", options={"movflags": "+faststart"})
    private_dirs.clear()  # the encoder's
    assert decode_audio(faststart).codec == "aac"
    assert decode_audio(corpus["speech.webm"]).codec == "opus"
    for refused in ("video.webm", "corrupt.ogg", "bomb_unknown_length.flac"):
        with pytest.raises(AudioRejected):
            decode_audio(corpus[refused])
    assert private_dirs == []


@pytest.mark.parametrize(("container", "codec"), [("wav", "pcm_s16le"), ("ogg", "flac")])
def test_more_than_two_channels_fold_to_stereo(container: str, codec: str) -> None:
    """Channels past the first two go to both sides at -3 dB, scaled by 1/(1 + 2 x 0.707) for four."""
    silent, centre = np.zeros(RATE, dtype=np.float32), tone(1.0, 440.0, 0.5)
    four = np.stack([silent, silent, centre, silent])
    data = wav_bytes(four, RATE) if container == "wav" else encode(four, RATE, "ogg", "flac", sample_format="s16")
    decoded = decode_audio(data)  # WAV by libsndfile, Ogg/FLAC by ffmpeg
    assert (decoded.codec, decoded.channels, decoded.samples.shape) == (codec, 4, (2, RATE))
    expected = centre * 2**-0.5 / (1 + 2 * 2**-0.5)
    np.testing.assert_allclose(decoded.samples, np.stack([expected, expected]), atol=2e-4)


def test_no_ffmpeg_library_is_mapped_into_the_process(tmp_path: Path) -> None:
    """Decoding a clip of every format and streaming every speech format maps libsndfile, and no libav*."""
    voice = speech_mono(2.0)
    clips = {
        "wav": wav_bytes(voice),
        "flac": encode(voice, RATE, "flac", "flac"),
        "opus.ogg": encode(voice, RATE, "ogg", "libopus"),
        "vorbis.ogg": encode(voice, RATE, "ogg", "libvorbis"),
        "mp3": encode(voice, RATE, "mp3", "libmp3lame"),
        "webm": encode(voice, RATE, "webm", "libopus"),
        "m4a": encode(voice, RATE, "ipod", "aac"),
    }
    for name, data in clips.items():
        (tmp_path / name).write_bytes(data)
    program = """
import sys
from pathlib import Path
from backend.audio.decode import decode_audio
from backend.audio.formats import SPEECH_FORMATS, StreamEncoder
for path in sys.argv[1:]:
    print(decode_audio(Path(path).read_bytes()).codec, file=sys.stderr)
for fmt in SPEECH_FORMATS:
    encoder = StreamEncoder(fmt)
    assert encoder.feed(bytes(48000)) + encoder.finish()
print(Path("/proc/self/maps").read_text())
"""
    paths = [str(tmp_path / name) for name in clips]
    result = subprocess.run(
        [sys.executable, "-c", program, *paths], capture_output=True, timeout=120, cwd=ROOT, check=True
    )
    assert result.stderr.decode().split() == ["pcm_s16le", "flac", "opus", "vorbis", "mp3float", "opus", "aac"]
    maps = result.stdout.decode()
    assert "libsndfile" in maps
    assert sorted({line.split()[-1] for line in maps.splitlines() if FFMPEG_LIBRARIES.search(line)}) == []


def test_the_variable_an_ffmpeg_error_names_is_the_settings_own() -> None:
    assert env_var("ffmpeg") == FFMPEG_VARIABLE
