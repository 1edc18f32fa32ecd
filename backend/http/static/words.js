// What the page says of a spoken consent's verdict, of a sample whose speaker is not the consent's, and of how
// much a voice sounds like its samples. Pure functions, so Node checks the words
// (tests/unit/test_page_words.py) as the browser shows them.

/** Why a recording of the phrase was rejected (`reason` of `POST /api/v1/consents/{id}/recording`), and what to do. */
export const REJECTED = Object.freeze({
  phrase_mismatch: "We did not hear the phrase as written; read it again, the four numbers at the end too.",
  // Refused with the room's speech-to-noise ratio under 20 dB: the room, not the reading, is what to change.
  too_noisy:
    "It was too noisy where you read it for us to hear the phrase. Read it again somewhere quieter, close to the microphone.",
  too_short: "That recording holds too little speech to be the whole phrase; read all of it, in one go.",
  not_speech:
    "We heard no speech in that recording; check that your microphone is on and close to you, then read the phrase again.",
  // Its lifetime is the server's (VOICEGATE_CONSENT_PHRASE_SECONDS): the page shows the time to read it by instead.
  expired: "This phrase has expired; get a new one and read it straight away.",
  synthetic_speech:
    "That recording is synthesized speech: it carries the watermark of voices like the ones made here." +
    " Read the phrase yourself.",
});

/** The sentence for a rejected recording. */
export function rejectionWords(reason) {
  return REJECTED[reason] || `The recording was not accepted (${reason}); read the phrase again.`;
}

/** A sample refused because its voice is not the voice that read the consent: its score beside the threshold. */
export function speakerMismatchWords(score, threshold) {
  return (
    `This sample's voice does not match the voice that read the consent (${score.toFixed(2)};` +
    ` the same speaker from ${threshold.toFixed(2)}). Record it yourself.`
  );
}

/** The stretches of a sample a refusal names ("the speech from 4.2 s to 24.0 s and from ..."), as [start, end]. */
export function namedSeconds(reason) {
  return [...reason.matchAll(/from (\d+(?:\.\d+)?) s to (\d+(?:\.\d+)?) s/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

/** "from 4.2 s to 24.0 s", or "from 0.5 s to 3.9 s and from 20.1 s to 24.0 s". */
function stretchWords(stretches) {
  return stretches.map(([start, end]) => `from ${start.toFixed(1)} s to ${end.toFixed(1)} s`).join(" and ");
}

/**
 * Why a sample failed on the queue (its status: `failureReason`, and `speakerMatch` when it was judged). Someone
 * else's voice in part of it is said with the seconds where it speaks.
 */
export function sampleFailureWords(sample, threshold) {
  const reason = sample.failureReason || "";
  const stretches = namedSeconds(reason);
  if (reason.startsWith("speaker_mismatch") && stretches.length) {
    return (
      `${capitalised(stretchWords(stretches))}, this sample is not the voice that read the consent: someone else` +
      " is speaking there. Record the sample yourself, with no one else speaking."
    );
  }
  if (reason.startsWith("mixed_speakers") && stretches.length) {
    return (
      `This sample holds two voices: ${stretchWords(stretches)} it is not the voice of the rest.` +
      " A sample is one person's voice: record it again, with no one else speaking."
    );
  }
  if (reason.startsWith("speaker_mismatch") && typeof sample.speakerMatch === "number") {
    return speakerMismatchWords(sample.speakerMatch, threshold);
  }
  if (reason.startsWith("synthetic_speech")) {
    return (
      "This sample is synthesized speech (it carries the watermark of voices like the ones made here):" +
      " a voice is not cloned from a clone. Record the speaker themself."
    );
  }
  return `This sample was refused: ${reason || "it could not be checked"}.`;
}

function capitalised(words) {
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Why a likeness is missing (`likenessError`). */
const NO_LIKENESS = Object.freeze({
  probe_failed: "the provider could not speak the test sentence",
  no_speech: "what the provider spoke held too little speech to judge",
  no_sample: "the voice was not made from a sample here",
});

/** How much closer than the voice it started from a clone must come to be called closer (cosine). */
const CLOSER_BY = 0.05;

/**
 * How much a ready voice sounds like its samples, said first in words (the same speaker or not, and whether the
 * clone came closer than the voice it started from), then the numbers: its likeness, the threshold from which it
 * passes as their speaker, and what the stock voice scored against the same samples (`baseline`: for the offline
 * voice, the voice before its adaptation); for the offline voice, also what it is. "" when there is nothing to say
 * (not ready, not judged yet).
 */
export function likenessWords({ ready, likeness, threshold, error, provider, baseline }) {
  if (!ready) return "";
  let words;
  if (typeof likeness === "number" && typeof threshold === "number") {
    const started = provider === "local" ? "the voice before it was adapted" : "a stock voice";
    const known = typeof baseline === "number";
    let verdict;
    if (likeness >= threshold) {
      verdict = known && baseline >= threshold
        ? `Sounds like the sample's speaker, as ${started} already did`
        : "Sounds like the sample's speaker";
    } else if (known && likeness - baseline >= CLOSER_BY) {
      verdict = `Closer to the sample than ${started}, but not yet its speaker`;
    } else if (known) {
      verdict = `No closer to the sample than ${started}: not its speaker`;
    } else {
      verdict = "Not the sample's speaker";
    }
    words = `${verdict}.`;
  } else if (error) {
    words = `How close it sounds was not measured: ${NO_LIKENESS[error] || error}.`;
  } else {
    return "";
  }
  if (provider === "local") {
    words += " The offline voice is a stand-in, not a clone: it follows the sample's pitch and pace in a voice of its own.";
  }
  return words;
}

/**
 * The numbers behind `likenessWords`, for those who want them (the page keeps them behind a toggle): the likeness,
 * the threshold from which it passes as the sample's speaker, and what the voice it started from scored. "" when
 * there are none.
 */
export function likenessNumbers({ ready, likeness, threshold, provider, baseline }) {
  if (!ready || typeof likeness !== "number" || typeof threshold !== "number") return "";
  const before = typeof baseline === "number"
    ? `; ${provider === "local" ? "before it was adapted" : "a stock voice"}: ${baseline.toFixed(2)}`
    : "";
  return `Likeness ${likeness.toFixed(2)}; the same speaker from ${threshold.toFixed(2)}${before}.`;
}

/** What each blocking reason of `voice_launch_readiness` asks of the user: words, never the code. */
export const LAUNCH_REASONS = Object.freeze({
  no_voice: "No voice yet: record or choose a sample to clone it from.",
  clone_not_ready: "The voice is not cloned yet.",
  runtime_not_synced: "The voice is not set up at its provider yet.",
  preview_required: "Listen to the preview and confirm it sounds right.",
  voice_deleted: "The voice was deleted: record or choose a sample to clone a new one.",
});

/** The words for one blocking reason; one the page does not know is said as the server's sentence would. */
export function launchReasonWords(reason) {
  return LAUNCH_REASONS[reason] || "The voice is not ready yet.";
}

/** A refused launch (409 `launch_blocked`), its reasons in words. */
export function launchBlockedWords(reasons) {
  const said = (reasons || []).map(launchReasonWords);
  return said.length ? `Not ready to launch yet. ${said.join(" ")}` : "Not ready to launch yet.";
}

/**
 * Why a synthesis job failed (its `error`: `{code, message}`), as a sentence: the message the server keeps for
 * people (without the "inference failed:" its provider failures start with), never the bare code.
 */
export function jobFailureWords(error) {
  const message = ((error && error.message) || "").replace(/^inference failed:\s*/i, "").trim().replace(/[.\s]+$/, "");
  if (!message) return "Speaking failed, and voicegate kept no reason. Try again, or use another voice.";
  // Within the sentence: "The voice is gone" reads "the voice is gone" (an acronym or "I" keeps its capital).
  const within = /^[A-Z][a-z]/.test(message) ? message[0].toLowerCase() + message.slice(1) : message;
  return `Speaking failed: ${within}.`;
}

/** `name`, or `name (2)`, `name (3)`…: the first of them not in `taken` (compared without case or outer spaces). */
export function unusedName(name, taken) {
  const used = new Set([...taken].filter(Boolean).map((t) => t.trim().toLowerCase()));
  if (!used.has(name.trim().toLowerCase())) return name;
  for (let n = 2; ; n += 1) {
    const next = `${name} (${n})`;
    if (!used.has(next.toLowerCase())) return next;
  }
}

/** The name of a sample given as the file `fileName`, when none is typed: the file's name without its extension. */
export function nameFromFile(fileName) {
  const base = fileName.replace(/\.[A-Za-z0-9]{1,5}$/, "").trim();
  if (!base || base === "recording") return "Recording";
  return base.slice(0, 200);
}

/** A wait or a period as a person says it: "42 s", "5 min", "18 h 31 min" (never shorter than it is). */
export function durationWords(seconds) {
  const whole = Math.ceil(seconds);
  if (whole < 60) return `${whole} s`;
  const minutes = Math.ceil(whole / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest === 0 ? `${hours} h` : `${hours} h ${rest} min`;
}

/**
 * A quality report's advice (the API's short words) as what to do about it, for the page's list below the report.
 * Advice the page does not know is said as it comes.
 */
const ADVICE = Object.freeze({
  "too quiet": "It is quiet: hold the microphone closer, or speak up.",
  "background noise": "There is noise behind the voice: record again somewhere quieter, away from fans and traffic.",
  clipping: "It is too loud in places, and distorts: move back from the microphone, or turn its level down.",
  "mostly silence": "Most of it is silence: read on without long pauses.",
  "low sample rate": "It was recorded at a low sample rate, as phone calls are: record with a computer's or a phone's own recorder.",
  "too short for best results": "A longer sample clones better: 10 to 20 s of reading.",
});

export function adviceWords(advice) {
  return ADVICE[advice] || advice;
}
