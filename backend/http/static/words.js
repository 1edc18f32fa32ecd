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

/**
 * The same, in the languages a phrase is read in besides English: the reader hears why in the language they read
 * (`language` of the consent). Written for a reader: "the four numbers at the end" are the code.
 */
export const REJECTED_IN = Object.freeze({
  es: {
    phrase_mismatch: "No oímos la frase tal como está escrita; léala de nuevo, también los cuatro números del final.",
    too_noisy:
      "Había demasiado ruido donde la leyó para oír la frase. Léala de nuevo en un lugar más tranquilo, cerca del micrófono.",
    too_short: "Esa grabación tiene muy poca voz para ser la frase entera; léala completa, de una vez.",
    not_speech:
      "No oímos ninguna voz en esa grabación; compruebe que el micrófono está encendido y cerca de usted, y lea la frase de nuevo.",
    expired: "Esta frase ha caducado; pida una nueva y léala enseguida.",
    synthetic_speech: "Esa grabación es voz sintetizada. Lea la frase usted mismo.",
  },
  de: {
    phrase_mismatch:
      "Wir haben den Satz nicht so gehört, wie er dasteht; lesen Sie ihn noch einmal, auch die vier Zahlen am Ende.",
    too_noisy:
      "Wo Sie gelesen haben, war es zu laut, um den Satz zu hören. Lesen Sie ihn an einem ruhigeren Ort noch einmal, nah am Mikrofon.",
    too_short: "In dieser Aufnahme ist zu wenig Sprache für den ganzen Satz; lesen Sie ihn ganz, in einem Zug.",
    not_speech:
      "In dieser Aufnahme haben wir keine Sprache gehört; prüfen Sie, ob Ihr Mikrofon an und nah bei Ihnen ist, und lesen Sie den Satz noch einmal.",
    expired: "Dieser Satz ist abgelaufen; holen Sie einen neuen und lesen Sie ihn gleich.",
    synthetic_speech: "Diese Aufnahme ist synthetische Sprache. Lesen Sie den Satz selbst.",
  },
  fr: {
    phrase_mismatch:
      "Nous n'avons pas entendu la phrase telle qu'elle est écrite ; lisez-la de nouveau, les quatre chiffres de la fin aussi.",
    too_noisy:
      "Il y avait trop de bruit là où vous l'avez lue pour entendre la phrase. Relisez-la dans un endroit plus calme, près du micro.",
    too_short: "Cet enregistrement contient trop peu de parole pour être la phrase entière ; lisez-la en entier, d'un trait.",
    not_speech:
      "Nous n'avons entendu aucune parole dans cet enregistrement ; vérifiez que votre micro est allumé et près de vous, puis relisez la phrase.",
    expired: "Cette phrase a expiré ; demandez-en une nouvelle et lisez-la tout de suite.",
    synthetic_speech: "Cet enregistrement est de la parole synthétique. Lisez la phrase vous-même.",
  },
  pt: {
    phrase_mismatch: "Não ouvimos a frase como está escrita; leia-a de novo, também os quatro números do final.",
    too_noisy:
      "Havia ruído demais onde a leu para ouvirmos a frase. Leia-a de novo num lugar mais silencioso, perto do microfone.",
    too_short: "Essa gravação tem pouca fala para ser a frase inteira; leia-a toda, de uma vez.",
    not_speech:
      "Não ouvimos fala nessa gravação; verifique se o microfone está ligado e perto de você, e leia a frase de novo.",
    expired: "Esta frase expirou; peça uma nova e leia-a logo.",
    synthetic_speech: "Essa gravação é fala sintetizada. Leia a frase você mesmo.",
  },
  it: {
    phrase_mismatch:
      "Non abbiamo sentito la frase come è scritta; rileggila, anche i quattro numeri alla fine.",
    too_noisy:
      "Dove l'hai letta c'era troppo rumore per sentire la frase. Rileggila in un posto più silenzioso, vicino al microfono.",
    too_short: "In quella registrazione c'è troppo poco parlato per essere la frase intera; leggila tutta, d'un fiato.",
    not_speech:
      "Non abbiamo sentito nessuna voce in quella registrazione; controlla che il microfono sia acceso e vicino a te, poi rileggi la frase.",
    expired: "Questa frase è scaduta; chiedine una nuova e leggila subito.",
    synthetic_speech: "Quella registrazione è voce sintetizzata. Leggi la frase tu stesso.",
  },
  zh: {
    phrase_mismatch: "我们没有听到按原文读出的这句话；请再读一遍，包括最后的四个数字。",
    too_noisy: "您朗读的地方太吵，我们听不清这句话。请换一个安静的地方，靠近麦克风再读一遍。",
    too_short: "这段录音里的语音太少，不是整句话；请一口气把整句读完。",
    not_speech: "这段录音里没有听到说话声；请检查麦克风已打开并靠近您，然后再读一遍。",
    expired: "这句话已过期；请获取新的一句并马上朗读。",
    synthetic_speech: "这段录音是合成语音。请您亲自朗读这句话。",
  },
  ja: {
    phrase_mismatch: "文章が書かれたとおりに聞き取れませんでした。最後の四つの数字も含めて、もう一度読んでください。",
    too_noisy: "読んだ場所がうるさくて、文章が聞き取れませんでした。静かな場所で、マイクの近くでもう一度読んでください。",
    too_short: "この録音は声が少なく、文章全体ではありません。一度に全部読んでください。",
    not_speech: "この録音から声が聞こえませんでした。マイクがオンで近くにあることを確かめて、もう一度読んでください。",
    expired: "この文章は期限切れです。新しい文章を受け取って、すぐに読んでください。",
    synthetic_speech: "この録音は合成音声です。ご自身で文章を読んでください。",
  },
});

/** The sentence for a rejected recording, in the language the phrase was read in (English when it has none). */
export function rejectionWords(reason, language = "en") {
  const words = (REJECTED_IN[language] || REJECTED)[reason] || REJECTED[reason];
  return words || `The recording was not accepted (${reason}); read the phrase again.`;
}

/** Each language a phrase is offered in, by its code, named in itself. */
export const LANGUAGE_NAMES = Object.freeze({
  en: "English",
  zh: "中文",
  es: "Español",
  de: "Deutsch",
  fr: "Français",
  ja: "日本語",
  pt: "Português",
  it: "Italiano",
});

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
