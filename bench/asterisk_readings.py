"""Readings by one speaker, words and digits alike, for bench/consent_languages.py: a folder in its ``--speech``
layout made of the Asterisk PBX's core prompts, each with the transcript its package ships, and the same
speaker's digits.

    python bench/asterisk_readings.py OUT [--only es,fr,it] [--per-language 30] [--longest-seconds 20] [--seed 101]
    python bench/consent_languages.py --speech OUT --only es,fr,it

consent_languages's own readings join a FLEURS or Common Voice speaker's sentence to another speaker's digits; a
real reader says both. Here one voice says both: Allison (Mexican Spanish) and June Wallack (Canadian French),
CC BY-SA 3.0, and Carlo Flora (Italian), CC BY 3.0, from Debian's packages asterisk-core-sounds-LANG-g722 (the
prompts, wideband G.722) and asterisk-core-sounds-LANG (their transcripts, core-sounds-LANG.txt). Studio
recordings, 2-20 s, most shorter than voicegate's phrase: a stand-in for the one voice, not for a user's
microphone or the phrase's length.

A prompt is taken when its transcript has at least ``MIN_WORDS`` words and no digit, markup, colon (one line of
the Italian list runs two prompts together after a colon) or damaged character, it is not one of ``MISLABELLED``,
its transcript is not nearly another's already taken (``SAME_TEXT``: a wrong sentence must be another sentence),
and it lasts at most ``--longest-seconds`` (a reading longer than Whisper's 30 s window has its code cut off):
``--per-language`` of them, drawn by ``--seed``. Each prompt and digit is decoded by ffmpeg and its silence before
and after trimmed by sox, as tests/clips/languages's digits were. The packages are downloaded with
``apt-get download`` (not installed) into a temporary folder; ffmpeg and sox must be on the PATH.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import gzip
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile

#: Each language's voice: its folder under usr/share/asterisk/sounds, who recorded it, and the licence the
#: package's copyright file gives its files.
VOICES = {
    "es": ("es_MX_f_Allison", "Allison, Mexican Spanish", "CC-BY-SA-3.0"),
    "fr": ("fr_CA_f_June", "June Wallack, Canadian French", "CC-BY-SA-3.0"),
    "it": ("it_IT_m_Carlo", "Carlo Flora, Italian", "CC-BY-3.0"),
}
#: The fewest words a prompt's transcript has: a sentence, not a menu's word or two.
MIN_WORDS = 8
#: What a usable transcript holds none of: digits (the code's digits are the only ones a phrase says), markup, a
#: colon, and a question mark inside a sentence (the Italian list's damaged accents, "pu? essere").
_UNUSABLE = re.compile(r"[0-9\[\]<>(){}%*#:/]|\?\s*[a-zà-ÿ]")
#: Prompts whose recording does not say their transcript (heard by the bench's bare transcription, 2026-11-30):
#: the recording lacks the transcript's second sentence, says a digit it does not write, or says other words.
MISLABELLED = {
    "es": {"vm-mismatch", "vm-invalid-password", "vm-record-prepend"},
    "fr": {"vm-mismatch"},
    "it": {"please-try-call-later"},
}
#: How alike two transcripts may be (difflib's ratio over their letters) before the second is left out.
SAME_TEXT = 0.8
#: sox's trim of the silence before and after, as tests/clips/languages/SOURCES.tsv gives it for the digits.
TRIM = ["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"]
COLUMNS = ("language", "file", "repository", "commit", "path", "licence", "corpus", "transcript", "form")


def unpacked(language: str, into: Path) -> tuple[Path, Path, str]:
    """The language's two packages downloaded and unpacked into ``into``: the prompts' folder, the transcripts'
    file, and the prompts' package version."""
    packages = [f"asterisk-core-sounds-{language}-g722", f"asterisk-core-sounds-{language}"]
    fetched = subprocess.run(["apt-get", "download", *packages], check=False, cwd=into, capture_output=True, text=True)
    if fetched.returncode:
        sys.exit(f"apt-get download {' '.join(packages)} failed: {fetched.stderr.strip()}")
    for deb in into.glob(f"asterisk-core-sounds-{language}*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(into / "root")], check=True)
    (deb,) = into.glob(f"asterisk-core-sounds-{language}-g722_*.deb")
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True)
    root = into / "root" / "usr" / "share"
    transcripts = root / "doc" / f"asterisk-core-sounds-{language}" / f"core-sounds-{language}.txt.gz"
    return root / "asterisk" / "sounds" / VOICES[language][0], transcripts, version.stdout.strip()


def prompts(transcripts: Path) -> list[tuple[str, str]]:
    """(name, transcript) of each usable prompt the list names, in the list's order."""
    out = []
    with gzip.open(transcripts, "rt", encoding="utf-8-sig") as lines:
        for line in lines:
            name, colon, text = line.partition(":")
            text = text.strip()
            if line.startswith(";") or not colon or _UNUSABLE.search(text) or len(text.split()) < MIN_WORDS:
                continue
            out.append((name.strip(), text))
    return out


def _letters(text: str) -> str:
    return "".join(char for char in text.lower() if char.isalnum())


def distinct(text: str, taken: list[str]) -> bool:
    """Whether ``text`` is not nearly any of ``taken`` (``SAME_TEXT``)."""
    return all(
        difflib.SequenceMatcher(None, _letters(text), _letters(other), autojunk=False).ratio() < SAME_TEXT
        for other in taken
    )


def decoded(g722: Path, wav: Path) -> float:
    """``g722`` as a 16 kHz WAV at ``wav``, its silence before and after trimmed; its seconds."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as raw:
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-f", "g722", "-i", str(g722), "-ar", "16000", raw.name],
            check=True,
        )
        subprocess.run(["sox", raw.name, str(wav), *TRIM], check=True)
    return float(soundfile.info(str(wav)).duration)


def build(out: Path, languages: list[str], per_language: int, longest_s: float, seed: int) -> list[dict[str, str]]:
    """Every language's prompts and digits written under ``out``; the rows of its SOURCES.tsv."""
    rows = []
    for language in languages:
        voice, speaker, licence = VOICES[language]
        (out / language).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch:
            sounds, transcripts, version = unpacked(language, Path(scratch))
            source = {
                "language": language,
                "repository": f"Debian package asterisk-core-sounds-{language}-g722",
                "commit": version,
                "licence": licence,
                "corpus": f"Asterisk core sounds, recorded by {speaker}",
                "form": "WAV of the source's G.722 decoded by ffmpeg, its silence before and after trimmed by sox",
            }
            for digit in range(10):
                file = f"{language}/digit_0{digit}.wav"
                decoded(sounds / "digits" / f"{digit}.g722", out / file)
                rows.append(source | {"file": file, "path": f"{voice}/digits/{digit}.g722", "transcript": str(digit)})
            usable = [
                (name, text)
                for name, text in prompts(transcripts)
                if (sounds / f"{name}.g722").exists() and name not in MISLABELLED[language]
            ]
            taken: list[str] = []
            for at in np.random.default_rng(seed).permutation(len(usable)):
                name, text = usable[at]
                if len(taken) == per_language:
                    break
                if not distinct(text, taken):
                    continue
                file = f"{language}/{name.replace('/', '_')}.wav"
                if decoded(sounds / f"{name}.g722", out / file) > longest_s:
                    (out / file).unlink()
                    continue
                rows.append(source | {"file": file, "path": f"{voice}/{name}.g722", "transcript": text})
                taken.append(text)
            short = f", fewer than the {per_language} asked" if len(taken) < per_language else ""
            print(f"{language}: {len(taken)} prompts of {len(usable)} usable{short}", file=sys.stderr)
    with (out / "SOURCES.tsv").open("w", encoding="utf-8", newline="") as sources:
        writer = csv.DictWriter(sources, COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main() -> None:
    """Check the arguments and the tools, then build the folder."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--only", default=",".join(VOICES), help=f"of {','.join(VOICES)}")
    parser.add_argument("--per-language", type=int, default=30)
    parser.add_argument("--longest-seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=101)
    args = parser.parse_args()
    languages = args.only.split(",")
    if unknown := set(languages) - set(VOICES):
        parser.error(f"--only: no Asterisk voice for {','.join(sorted(unknown))} (there are {','.join(VOICES)})")
    if missing := [tool for tool in ("apt-get", "dpkg-deb", "ffmpeg", "sox") if shutil.which(tool) is None]:
        parser.error(f"{', '.join(missing)} not found on the PATH (Debian: apt-get install ffmpeg sox)")
    build(args.out, languages, args.per_language, args.longest_seconds, args.seed)


if __name__ == "__main__":
    main()
