"""Whisper's decoder in numpy (backend/consents/decoder.py) against CTranslate2's own, on a real reading: the logits
of a forced phrase, both of a hearing's passes in one call, and the model.bin it reads."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import ctranslate2
import numpy as np
import pytest

from backend.consents import whisper
from backend.consents.decoder import BINARY_VERSION, Branch, Decoder, ModelFormatError, variables
from backend.consents.languages import WORDINGS
from backend.consents.phrase import phrase_for
from tests.unit.consents.test_whisper import reading

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def float32_model() -> ctranslate2.models.Whisper:
    """CTranslate2's Whisper from the same weights, in float32 (production runs int8): the numpy decoder, in
    float32 too, must give its logits. Module-scoped: about 350 MB, let go once this file's tests are done."""
    return ctranslate2.models.Whisper(
        "whisper-base", device="cpu", compute_type="float32", intra_threads=1, files=whisper.model_files()
    )


def hearing_sequences(
    language: str, code: str, model: ctranslate2.models.Whisper | None = None
) -> tuple[np.ndarray, list[list[int]], list[int]]:
    """A real reading's encoder output (``model``'s encoder; the product's when None) and the two sequences
    ``Whisper.hear`` forces for it (the digit words told in order and in reverse, the prompt, the phrase), with
    where each one's phrase starts."""
    audio, _ = reading(language, code)
    features = ctranslate2.StorageView.from_array(whisper.log_mel(audio)[None])
    encoded = np.asarray((model or whisper.shared()._model).encode(features, to_cpu=True))[0]
    tokens = whisper.tokenizer()
    digits = WORDINGS[language].digit_words
    phrase = tokens.encode(" " + phrase_for("Ana", code, language).text)
    prompt = [tokens.special(f"<|{s}|>") for s in ("startoftranscript", language, "transcribe", "notimestamps")]
    told = [
        [tokens.special("<|startofprev|>"), *tokens.encode(" " + " ".join(order))] for order in (digits, digits[::-1])
    ]
    return encoded, [before + prompt + phrase for before in told], [len(before) + len(prompt) - 1 for before in told]


def test_the_logits_of_a_forced_phrase_are_ctranslate2s(float32_model: ctranslate2.models.Whisper) -> None:
    """CTranslate2's `generate`, forced along the same sequence one step per token, returns a logit row for each
    token after the prompt and one past it; the decoder's one pass gives the same rows."""
    encoded, sequences, first = hearing_sequences("es", "4719", float32_model)
    ours = whisper.shared()._decoder.logits(encoded, sequences, first)
    for sequence, start, rows in zip(sequences, first, ours, strict=True):
        [result] = float32_model.generate(
            ctranslate2.StorageView.from_array(encoded[None]),
            [sequence],
            beam_size=1,
            max_length=2 * len(sequence),
            return_logits_vocab=True,
            suppress_tokens=[],
            suppress_blank=False,
        )
        theirs = np.stack([np.asarray(row, dtype=np.float32) for row in result.logits[0][: len(sequence) - start]])
        assert rows.shape == theirs.shape == (len(sequence) - start, 51865)
        assert np.abs(rows - theirs).max() < 1e-3
        assert (rows.argmax(axis=1) == theirs.argmax(axis=1)).all()


def test_sequences_heard_together_attend_to_their_own_tokens_alone() -> None:
    encoded, sequences, first = hearing_sequences("de", "4562")
    decoder = whisper.shared()._decoder
    together = decoder.logits(encoded, sequences, first)
    alone = [decoder.logits(encoded, [sequence], [start])[0] for sequence, start in zip(sequences, first, strict=True)]
    assert together.shape == (2, *alone[0].shape)
    for both, one in zip(together, alone, strict=True):
        np.testing.assert_allclose(both, one, atol=1e-4)
    # The two passes are told different things before the phrase, so what they expect differs.
    assert np.abs(together[0] - together[1]).max() > 0.1


def test_a_branch_is_heard_as_its_sequence_would_be_with_the_branchs_tokens_in_place() -> None:
    """A branch's rows are the rows its sequence would give, had it said the branch's tokens from the branch's index
    on; the sequences' own rows are as without branches."""
    encoded, sequences, first = hearing_sequences("fr", "4719")
    decoder = whisper.shared()._decoder
    tokens = whisper.tokenizer()
    neuf = tuple(tokens.encode(" neuf quatre"))
    at = [len(sequence) - 6 for sequence in sequences]
    branches = [Branch(1, at[1], neuf), Branch(0, at[0], neuf[:1]), Branch(0, at[0] - 3, neuf)]
    main, rows = decoder.branched(encoded, sequences, first, branches)
    np.testing.assert_allclose(main, decoder.logits(encoded, sequences, first), atol=1e-4)
    assert rows.shape == (2 * len(neuf) + 1, 51865)
    expected = []
    for branch in branches:
        sequence = [*sequences[branch.sequence][: branch.at], *branch.tokens]
        alone = decoder.logits(encoded, [sequence], [branch.at])[0]
        expected += list(alone)
    np.testing.assert_allclose(rows, np.stack(expected), atol=1e-4)
    # The branch's first row is not its sequence's at that index: the token before it differs.
    assert np.abs(rows[0] - main[1][at[1] - first[1]]).max() > 0.1


def test_a_sequence_longer_than_the_decoder_takes_is_refused() -> None:
    decoder = whisper.shared()._decoder
    with pytest.raises(ValueError, match="449 tokens; Whisper's decoder takes 448"):
        decoder.logits(np.zeros((50, 512), dtype=np.float32), [[0] * 449], [0])


def test_sequences_asking_for_different_numbers_of_rows_are_refused() -> None:
    decoder = whisper.shared()._decoder
    with pytest.raises(ValueError, match="as many rows each"):
        decoder.logits(np.zeros((50, 512), dtype=np.float32), [[1, 2, 3], [1, 2, 3, 4]], [0, 0])


#: Run in a fresh interpreter: BLAS's threads (as threadpoolctl reads them) before and after the model is loaded.
BLAS_AROUND_THE_LOAD = """
import json, voicegate, numpy, scipy.special, threadpoolctl
from backend.consents import whisper
def blas():
    return sorted(pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas")
before = blas()
whisper.shared()
print(json.dumps([before, blas()]))
"""


def test_loading_the_model_leaves_blas_threads_as_the_operator_set_them() -> None:
    """voicegate runs BLAS on one thread unless the operator sets more (voicegate/__init__.py); the decoder's matrix
    products run on what is set, and loading it changes nothing."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", BLAS_AROUND_THE_LOAD], env=env, cwd=ROOT, capture_output=True, check=True, text=True
    )
    before, after = json.loads(done.stdout.splitlines()[-1])
    assert before, done.stdout  # numpy's and scipy's OpenBLAS
    assert after == before


def model_bin(found: dict[str, np.ndarray], *, version: int = BINARY_VERSION) -> bytes:
    """``found`` in CTranslate2's binary format (its spec's `_serialize`), without aliases."""

    def text(value: str) -> bytes:
        return struct.pack("<H", len(value) + 1) + value.encode() + b"\0"

    out = struct.pack("<I", version) + text("WhisperSpec") + struct.pack("<II", 3, len(found))
    for name, value in found.items():
        kind = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.float16): 4}
        out += text(name) + struct.pack("<B", value.ndim) + b"".join(struct.pack("<I", d) for d in value.shape)
        out += struct.pack("<BI", kind[value.dtype], value.nbytes) + value.tobytes()
    return out + struct.pack("<I", 0)


def test_model_bin_is_read_variable_by_variable_with_its_aliases() -> None:
    found = variables(whisper.model_files()["model.bin"])
    assert found["decoder/embeddings/weight"].shape == (51865, 512)
    assert found["decoder/projection/weight"] is found["decoder/embeddings/weight"]
    made = {"a/weight": np.arange(6, dtype=np.float16).reshape(2, 3), "a/heads": np.array(8, dtype=np.int16)}
    again = variables(model_bin(made))
    assert set(again) == set(made)
    assert all(np.array_equal(again[name], value) and again[name].dtype == value.dtype for name, value in made.items())


def test_a_model_bin_of_another_format_or_cut_short_is_refused() -> None:
    made = {"a/weight": np.ones((4, 4), dtype=np.float32)}
    with pytest.raises(ModelFormatError, match="CTranslate2's format 5; this reads 6"):
        variables(model_bin(made, version=5))
    with pytest.raises(ModelFormatError, match="ends or breaks at byte"):
        variables(model_bin(made)[:-40])


def test_a_decoder_that_is_not_whispers_is_refused() -> None:
    found = dict(variables(whisper.model_files()["model.bin"]))
    found["decoder/activation"] = np.array(1, dtype=np.int8)  # GELU's tanh approximation
    with pytest.raises(ModelFormatError, match="not Whisper's"):
        Decoder(found)
