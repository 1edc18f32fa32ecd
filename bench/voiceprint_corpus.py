"""The speech bench/voiceprint.py and bench/ownership.py calibrate and judge the speaker encoder on: 391 public
recordings of 265 speakers, named file by file in bench/voiceprint_corpus.tsv, and put together here from two
public git repositories (the files are not in voicegate's repository: 78 MB).

    python bench/voiceprint_corpus.py DEST --resemblyzer PATH --autovc PATH

PATH is a clone of the repository (a work tree, or a bare git directory): each file is taken by its git blob id,
so any clone holding that blob serves, and checked against it before it is written to DEST/<speaker>/<name>.

* `resemblyzer`: the resemble-ai/Resemblyzer repository (Apache-2.0 code), `audio_data/librispeech_test-other/`
  (10 speakers x 10 utterances of LibriSpeech test-other) and `audio_data/librispeech_train-clean-100/` (251
  speakers x 1 utterance of train-clean-100): LibriSpeech (c) 2014 Vassil Panayotov, CC BY 4.0; the readers are
  LibriVox volunteers.
* `autovc`: the auspicious3000/autovc repository (MIT code), `wavs/p225`-`p228` (4 speakers x 10 utterances of the
  CSTR VCTK corpus): (c) the Centre for Speech Technology Research, University of Edinburgh, CC BY 4.0 (VCTK
  0.92; its earlier releases were under ODC-By 1.0, attribution required alike).

The manifest's `split` column holds a quarter of the speakers out of every choice made on this speech (the
thresholds, the network's int8 layers, the window length): `held-out` where the first byte of sha256("held-out"
+ speaker) is divisible by 4, chosen before any score was looked at, among four such salts, for holding out four
of the 14 speakers with several recordings (a quarter of them): 62 speakers and 98 recordings, 4 speakers with 10
each (LibriSpeech 2414 and 3005, VCTK p226 and p228). Everything else is `tuning`.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MANIFEST = Path(__file__).with_name("voiceprint_corpus.tsv")
SOURCES = ("resemblyzer", "autovc")


@dataclass(frozen=True)
class Entry:
    """One recording of the manifest."""

    source: str
    path: str
    blob: str
    speaker: str
    subset: str
    split: str

    @property
    def name(self) -> str:
        """Its file name (LibriSpeech's speaker-chapter-utterance.flac, VCTK's speaker_utterance.wav)."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def held_out(self) -> bool:
        """Whether its speaker is held out of all tuning."""
        return self.split == "held-out"


def entries(manifest: Path = MANIFEST) -> list[Entry]:
    """The manifest's recordings, in its order."""
    found = []
    for line in manifest.read_text().splitlines():
        if line and not line.startswith("#"):
            found.append(Entry(*line.split("\t")))
    return found


def blob_id(data: bytes) -> str:
    """The git blob id of ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def read(clone: Path, entry: Entry) -> bytes:
    """``entry``'s bytes from ``clone``: its file in a work tree, else its blob from the git directory."""
    file = clone / entry.path
    if file.is_file():
        return file.read_bytes()
    done = subprocess.run(
        ["git", "--git-dir", str(clone), "cat-file", "blob", entry.blob], capture_output=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise SystemExit(f"{clone} holds neither {entry.path} nor blob {entry.blob}")
    return done.stdout


def main(argv: Sequence[str] | None = None) -> int:
    """Copy and check every recording of the manifest into DEST."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path)
    for source in SOURCES:
        parser.add_argument(f"--{source}", type=Path, required=True, help=f"a clone of the {source} repository")
    args = parser.parse_args(argv)
    for entry in entries():
        data = read(getattr(args, entry.source), entry)
        if blob_id(data) != entry.blob:
            raise SystemExit(f"{entry.path}: not the recording the manifest names (git blob {entry.blob})")
        target = args.dest / entry.speaker / entry.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    print(f"{len(entries())} recordings in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
