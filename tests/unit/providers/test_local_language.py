"""The `local` engine speaks English, read from Latin letters: the voice's language decides (never a guess from
the text), and a text with a letter of another script is refused, naming the languages it speaks; names with
accents and digits still pass. The engine itself refuses the same before rendering; cloud providers keep their
own language lists."""

# Letters of every script are the subject here: fullwidth forms, Greek and modifier letters are meant.
# ruff: noqa: RUF001

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from backend.cpu import CpuExecutor
from backend.errors import LanguageNotSupported
from backend.http.pipeline.problem import problem_for
from backend.providers.base import ProviderVoice, SampleRef
from backend.providers.errors import PermanentProviderError, UnsupportedLanguageError
from backend.providers.local.language import foreign_words, refusal
from backend.providers.local.profile import VoiceProfile
from backend.providers.local.provider import InMemoryProfileStore, LocalProvider, LocalVoice
from backend.providers.registry import check_enrolment_language, check_speakable, sample_rules
from backend.wav import float_to_wav

READABLE = [
    "Hello there.",
    "Zoë and Chloë met at the café.",
    "Łódź, Ångström, naïve, Straße, Tiếng Việt, São Paulo, Æsir, Øresund",
    "Bonjour, comment ça va ?",  # Latin letters: the voice's language says what is spoken, not the text
    "Call 555-0123 at 10:30, it costs $4.50 (50% off) 😀",
    "5 µm is small; the ﬁrst ﬂoor; 1ª edición; ＡＢＣ",
    "Hawaiʻi, the rock ʼn roll, a stress mark ˈhere",
    "e\u0301te\u0301",  # accents as combining marks are marks, not letters
    "...!?",  # nothing speakable at all is the engine's empty_text, not a language refusal
]
UNREADABLE = [
    ("你好，世界。", ["你好，世界。"]),
    ("Hello 世界, how are you?", ["世界,"]),
    ("Привет, мир", ["Привет,", "мир"]),
    ("The α-helix", ["α-helix"]),
    ("こんにちは", ["こんにちは"]),
    ("ｺﾝﾆﾁﾊ", ["ｺﾝﾆﾁﾊ"]),
    ("مرحبا بالعالم", ["مرحبا", "بالعالم"]),
    ("안녕하세요 Bob", ["안녕하세요"]),
    ("Only one: 中", ["中"]),
]


@pytest.mark.parametrize("text", READABLE)
def test_latin_letters_with_any_accent_digits_and_symbols_are_readable(text: str) -> None:
    assert foreign_words(text) == []
    assert refusal("en", text) is None
    assert refusal(None, text) is None  # a voice with no language named is English, as it always was


@pytest.mark.parametrize(("text", "words"), UNREADABLE)
def test_a_single_letter_of_another_script_refuses_the_text_naming_its_words(text: str, words: list[str]) -> None:
    assert foreign_words(text) == words
    refused = refusal("en-US", text)
    assert isinstance(refused, UnsupportedLanguageError)
    assert refused.languages == ["en"]
    assert refused.provider_code == "language_not_supported"
    assert refused.safe_message.startswith("The text has letters that are not Latin (")
    assert refused.safe_message.endswith("), which the local provider cannot read. The local provider speaks: en.")
    assert f"“{words[0]}”" in refused.safe_message


def test_a_long_foreign_text_is_quoted_in_part() -> None:
    refused = refusal("en", " ".join(["Привет"] * 5) + " " + "你" * 50)
    assert refused is not None
    assert refused.safe_message == (
        "The text has letters that are not Latin (“Привет”, “Привет”, “Привет”, …), which the local provider "
        "cannot read. The local provider speaks: en."
    )
    one_word = refusal("en", "你" * 50)
    assert one_word is not None
    assert f"(“{'你' * 20}…”)" in one_word.safe_message


@pytest.mark.parametrize("language", ["en", "en-US", "en-GB", "EN", "en_AU", None])
def test_english_in_any_region_is_spoken(language: str | None) -> None:
    assert refusal(language, "Hello.") is None
    check_speakable("local", language, "Hello.")
    check_enrolment_language("local", language)


@pytest.mark.parametrize("language", ["zh", "zh-Hans-CN", "de", "fr-CA", "und"])
def test_the_voices_language_decides_even_for_an_english_text(language: str) -> None:
    refused = refusal(language, "Hello there, this is plain English.")
    assert refused is not None
    assert refused.safe_message == f"This voice's language is {language!r}. The local provider speaks: en."
    with pytest.raises(LanguageNotSupported) as speech:
        check_speakable("local", language, "Hello there.")
    with pytest.raises(LanguageNotSupported) as enrolment:
        check_enrolment_language("local", language)
    assert enrolment.value.detail == f"Language {language!r} is not supported. The local provider speaks: en."
    for refusal_ in (speech.value, enrolment.value):
        problem, _ = problem_for(refusal_, "/x")
        body = msgspec.json.decode(problem.encode())
        assert (body["status"], body["code"], body["provider"], body["languages"]) == (
            422,
            "language_not_supported",
            "local",
            ["en"],
        )


@pytest.mark.parametrize("provider", ["qwen", "cartesia", "elevenlabs", "selfhosted"])
def test_cloud_providers_are_never_refused_for_a_voices_language_or_its_text(provider: str) -> None:
    check_speakable(provider, "zh", "你好，世界。")
    check_speakable(provider, "ru", "Привет, мир")


def test_cloud_enrolment_keeps_each_providers_own_language_list() -> None:
    for language in ("zh", "zh-CN", "ja", "en", None):
        check_enrolment_language("qwen", language)
    check_enrolment_language("cartesia", "zh")
    check_enrolment_language("elevenlabs", "xx")  # ElevenLabs documents no list: nothing to refuse
    with pytest.raises(LanguageNotSupported) as refused:
        check_enrolment_language("qwen", "xx")
    assert refused.value.languages == sorted(sample_rules("qwen").languages or ())
    assert refused.value.detail == (
        "Language 'xx' is not supported. The qwen provider speaks: de, en, es, fr, it, ja, ko, pt, ru, zh."
    )


PROFILE = VoiceProfile(median_f0_hz=120.0, f0_sd_semitones=2.0, syllable_rate_hz=4.0, envelope_db=[0.0] * 24)


async def test_the_engine_refuses_a_voice_stored_in_another_language_before_rendering(cpu: CpuExecutor) -> None:
    store = InMemoryProfileStore()
    await store.put(LocalVoice(voice_id="local-zh", name="v", language="zh", enrolment_key="k", profile=PROFILE))
    provider = LocalProvider(store, cpu=cpu)
    # The stored language decides, whatever the caller's ProviderVoice says.
    voice = ProviderVoice(provider="local", voice_id="local-zh", language="en")
    with pytest.raises(UnsupportedLanguageError) as whole:
        await provider.synthesize(voice, "Hello! This is a preview of your new voice.")
    assert whole.value.safe_message == "This voice's language is 'zh'. The local provider speaks: en."
    with pytest.raises(UnsupportedLanguageError):
        _ = [chunk async for chunk in provider.stream(voice, "你好，世界。")]
    # A voice known only by its metadata (no stored profile) carries its language with it.
    portable = ProviderVoice(
        provider="local", voice_id="gone", language="zh-TW", metadata={"profile": msgspec.to_builtins(PROFILE)}
    )
    with pytest.raises(UnsupportedLanguageError):
        await provider.synthesize(portable, "Hello.")


async def test_the_engine_refuses_foreign_letters_for_an_english_voice(cpu: CpuExecutor) -> None:
    store = InMemoryProfileStore()
    await store.put(LocalVoice(voice_id="local-en", name="v", language="en", enrolment_key="k", profile=PROFILE))
    provider = LocalProvider(store, cpu=cpu)
    voice = ProviderVoice(provider="local", voice_id="local-en")
    with pytest.raises(UnsupportedLanguageError) as refused:
        await provider.synthesize(voice, "Hello 世界, how are you?")
    assert refused.value.languages == ["en"]


async def test_enrolment_in_another_language_is_refused_naming_english(cpu: CpuExecutor) -> None:
    provider = LocalProvider(cpu=cpu)
    sample = SampleRef(data=float_to_wav(np.zeros(24000 * 5), 24000), mime_type="audio/wav", duration_s=5.0)
    with pytest.raises(PermanentProviderError) as refused:
        await provider.enrol([sample], name="v", language="zh", transcript=None, key="k")
    assert (refused.value.provider_code, refused.value.safe_message) == (
        "sample_rules",
        "language 'zh' is not supported (only en)",
    )
    assert await provider.store.all() == []
