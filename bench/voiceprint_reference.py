"""The reference embeddings that tests/unit/voiceprint/test_network.py holds voicegate's encoder to: SpeechBrain's
own ECAPA-TDNN on the same checkpoint, run under torch in a throwaway virtualenv, never in voicegate's.

    python -m venv /tmp/reference && /tmp/reference/bin/pip install torch==2.13.0 speechbrain==1.1.2 soundfile
    /tmp/reference/bin/python bench/voiceprint_reference.py PATH/TO/embedding_model.ckpt

(SpeechBrain 1.1.2 imports torchaudio only to check its version: where no torchaudio wheel matches the torch
installed, an empty `torchaudio` package with `__version__ = "0.0"` satisfies it; nothing of it runs.)

For each clip of tests/clips/librispeech: its samples as float32, SpeechBrain's `Fbank(n_mels=80)`,
`InputNormalization(norm_type="sentence", std_norm=False)` and `ECAPA_TDNN` with the arguments of the model's
hyperparams.yaml (channels 1024 x 4 and 3072, kernels 5, 3, 3, 3, 1, dilations 1-4 and 1, attention 128,
embedding 192), the checkpoint loaded with `weights_only=True`, one thread, eval mode: the embedding,
L2-normalised, written to tests/unit/voiceprint/reference_prints.json with the versions that made it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import soundfile
import speechbrain  # type: ignore[import-not-found]
import torch  # type: ignore[import-not-found]
from speechbrain.lobes.features import Fbank  # type: ignore[import-not-found]
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN  # type: ignore[import-not-found]
from speechbrain.processing.features import InputNormalization  # type: ignore[import-not-found]

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT / "tests" / "clips" / "librispeech"
OUT = ROOT / "tests" / "unit" / "voiceprint" / "reference_prints.json"


def main(checkpoint: str) -> int:
    """Write the reference prints of every test clip."""
    torch.set_num_threads(1)
    banks = Fbank(n_mels=80).eval()
    norm = InputNormalization(norm_type="sentence", std_norm=False).eval()
    model = ECAPA_TDNN(
        80,
        channels=[1024, 1024, 1024, 1024, 3072],
        kernel_sizes=[5, 3, 3, 3, 1],
        dilations=[1, 2, 3, 4, 1],
        attention_channels=128,
        lin_neurons=192,
    )
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    model.eval()
    prints = {}
    for path in sorted(CLIPS.glob("*/*.flac")):
        samples, rate = soundfile.read(path, dtype="float32")
        assert rate == 16000, path
        with torch.no_grad():
            x = torch.from_numpy(samples)[None]
            embedding = model(norm(banks(x), torch.ones(1)), torch.ones(1))[0, 0].numpy().astype(np.float64)
        prints[path.stem] = [round(float(v), 8) for v in embedding / np.linalg.norm(embedding)]
    lines = [f"{json.dumps(name)}: {json.dumps(vector)}" for name, vector in prints.items()]
    made = f'"torch": "{torch.__version__}",\n"speechbrain": "{speechbrain.__version__}",\n"prints": {{\n'
    OUT.write_text("{\n" + made + ",\n".join(lines) + "\n}\n}\n")
    print(f"{OUT.relative_to(ROOT)}: {len(prints)} prints")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
