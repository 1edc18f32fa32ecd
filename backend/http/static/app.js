// The demo page: consent (the phrase read aloud, consent.js; or, where the server takes it, the box) → record or
// choose a sample → its quality report → text → Speak → listen, download, and how much the voice sounds like
// the sample; and the user's samples and voices, each with Delete (deletion on request is a promise).

import {
  ApiError,
  newIdempotencyKey,
  passing,
  patiently,
  repeatable,
  request,
  requestStream,
  sleep,
  waitingWords,
} from "./api.js";
import { clearBeside, sayBeside } from "./beside.js";
import { spokenConsent } from "./consent.js";
import { sampleReading } from "./ownreading.js";
import { Recorder } from "./recorder.js";
import { reflections } from "./reflection.js";
import { Session } from "./session.js";
import { createSampleSet } from "./sampleset.js";
import { createStudio, textRefusal } from "./studio.js";
import {
  adviceWords,
  jobFailureWords,
  likenessNumbers,
  likenessWords,
  nameFromFile,
  sampleFailureWords,
  unusedName,
} from "./words.js";

const POLL_MS = 400;
const MAX_RECORDING_S = 30;
// A failed job whose cause may pass: the queue gave up on its message. Any other failure speaks again the same.
const TRANSIENT_JOB_ERRORS = new Set(["dead_lettered"]);
// Refusals of Speak that are about the text (or the language it is in): said beside the text, not the button.
const TEXT_REFUSALS = new Set(["validation_failed", "language_not_supported"]);

const $ = (id) => document.getElementById(id);
const ui = {
  session: $("session"),
  signOut: $("sign-out"),
  alert: $("alert"),
  problemBar: $("problem-bar"),
  retry: $("retry"),
  dismiss: $("dismiss"),
  notice: $("notice"),
  signIn: $("sign-in"),
  signInForm: $("sign-in-form"),
  email: $("email"),
  signInStatus: $("sign-in-status"),
  sampleSection: $("sample-section"),
  consent: $("consent"),
  checkboxConsent: $("checkbox-consent"),
  consentText: $("consent-text"),
  consentVersion: $("consent-version"),
  keepSampleOption: $("keep-sample-option"),
  keepSample: $("keep-sample"),
  keepSampleText: $("keep-sample-text"),
  retentionDays: $("retention-days"),
  record: $("record"),
  recordHint: $("record-hint"),
  file: $("file"),
  sampleStatus: $("sample-status"),
  quality: $("quality"),
  advice: $("advice"),
  speakSection: $("speak-section"),
  speakTarget: $("speak-target"),
  speakLikeness: $("speak-likeness"),
  speakLikenessNumbers: $("speak-likeness-numbers"),
  text: $("text"),
  speak: $("speak"),
  progress: $("speak-progress"),
  speakStatus: $("speak-status"),
  result: $("result"),
  player: $("player"),
  download: $("download"),
  library: $("library"),
  samples: $("samples"),
  voices: $("voices"),
  confirmDelete: $("confirm-delete"),
  confirmDeleteText: $("confirm-delete-text"),
};

let session = null;
const recorder = new Recorder();
let recordingTimer = null;
let pending = null; // a chosen or recorded file that waits for consent
let pendingName = null; // the name it was to be stored under, when an upload of it was refused for its consent
let target = null; // what Speak speaks with: { ref: {sampleId} | {voiceId}, label }
let sampleRun = 0; // bumped by each new sample, so an older status loop stops
let speakRun = 0; // likewise for synthesis jobs
let lastJob = null;
let speaking = false; // a Speak run is under way: the button says so with aria-disabled and keeps its focus
let sampleRules = null; // the default provider's length rules, from /config.json
let reflectionFlow = null;
let spoken = null; // the spoken consent (consent.js)
let ownReading = null; // the reading a sample asks for when its voice matched another account's (ownreading.js)
let consentPolicy = "checkbox"; // the server's (VOICEGATE_CONSENT): `spoken` takes no checkbox
let speakerThreshold = 0.39; // from /config.json: the same-speaker cosine scores are said beside
let voices = []; // the user's voices, as last listed: the likeness of the one Speak uses is shown
let samples = []; // the user's samples, as last listed: a new one's name is not one of theirs
let libraryRun = 0; // bumped by each listing, so an older answer that comes late does not draw over a newer one
let problemOrigin = null; // what had the focus when the error came, to go back to on Dismiss

// Names, listening back, Selected, each voice's clips and the text's limit (studio.js).
const studio = createStudio({
  api,
  token: () => session.freshToken(),
  problem,
  failed,
  clearProblem,
  sayBeside,
  target: () => target,
  element,
  button,
  confirmDelete,
  refreshLibrary: () => refreshLibrary(),
});

// A voice from several chosen samples (sampleset.js).
const sampleSet = createSampleSet({
  api,
  problem,
  failed,
  clearProblem,
  element,
  refreshLibrary: () => refreshLibrary(),
  consentId: () => spoken && spoken.verifiedId(),
});

// ---- problems: one alert, and a "Try again" that repeats what failed when repeating can help ----

function problem(error, retry = null) {
  const message = typeof error === "string" ? error : error.message;
  // A refusal of the input stands until the user changes it: repeating the same request cannot help.
  if (error instanceof ApiError && !passing(error)) retry = null;
  problemOrigin = document.activeElement;
  ui.problemBar.hidden = false;
  ui.alert.textContent = message;
  ui.retry.hidden = retry === null;
  ui.retry.onclick = retry && (() => (clearProblem(), retry()));
  ui.retry.disabled = false;
  const wait = error instanceof ApiError && error.status === 503 ? error.retryAfter : null;
  if (retry && wait) {
    // The server said when it expects to be back: retrying sooner would only fail again.
    ui.retry.disabled = true;
    setTimeout(() => (ui.retry.disabled = false), wait * 1000);
  }
}

/**
 * What failed, said where it is acted on: a refusal of what the user gave or pressed (bad input, gone, not allowed
 * now) beside `control` (after `anchor`), where their eyes and focus are; what is about no one control (voicegate
 * unreachable, busy or failing, with "Try again" when `retry` is given; the session expired) in the bar at the top.
 */
function failed(error, control, { retry = null, anchor } = {}) {
  if (error instanceof ApiError && (passing(error) || error.status === 401)) {
    problem(error, retry);
    return;
  }
  sayBeside(control, typeof error === "string" ? error : error.message, anchor);
}

function clearProblem() {
  clearBeside();
  ui.alert.textContent = "";
  ui.problemBar.hidden = true;
  ui.retry.hidden = true;
  ui.retry.onclick = null;
}

ui.dismiss.addEventListener("click", () => {
  clearProblem();
  // Back to where the user was, if it is still there to take the focus; else to the first step's action.
  const back = problemOrigin;
  problemOrigin = null;
  if (back && back !== document.body && back.isConnected && !back.disabled && !back.closest("[hidden]")) back.focus();
  else ui.record.focus();
});

// ---- waiting out a busy or unavailable server: one calm, polite status while any request waits ----

const waits = new Map(); // each waiting request → the words for its pause

/** The `onWait` of one `patiently` call: shows its pause in the notice, and clears it when it is over. */
function waiting() {
  const mine = Symbol("wait");
  return (seconds, error) => {
    if (seconds > 0) waits.set(mine, waitingWords(error, seconds));
    else waits.delete(mine);
    // Changed once a pause, not every second: a live region that ticks would talk over everything else.
    ui.notice.textContent = [...waits.values()].pop() || "";
  };
}

/** A request as the signed-in user, sent again by itself while the server asks to wait if it is safe to. */
function api(path, options = {}) {
  const once = () => signedRequest(path, options);
  return repeatable(options) ? patiently(once, waiting()) : once();
}

/** A request as the signed-in user; a 401 renews the session once, or asks the user to sign in. */
async function signedRequest(path, options, send = request) {
  try {
    return await send(path, { ...options, token: await session.freshToken() });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    const renewed = await session.renew().catch(() => null);
    if (!renewed) {
      showSignIn();
      throw error;
    }
    return send(path, { ...options, token: session.token });
  }
}

// ---- start-up and sign-in ----

async function boot() {
  let config;
  try {
    config = await patiently(() => request("/config.json"), waiting());
  } catch (error) {
    problem(error, boot);
    return;
  }
  ui.consentText.textContent = config.consent.text;
  ui.consentVersion.textContent = config.consent.version;
  if (config.consent.keepSampleText) {
    // The optional consent of this version: keep the sample so the voice can move to another provider.
    ui.keepSampleText.textContent = config.consent.keepSampleText;
    ui.keepSampleOption.hidden = false;
  }
  ui.retentionDays.textContent = String(config.retentionDays);
  sampleRules = config.sampleRules;
  consentPolicy = config.consentPolicy;
  speakerThreshold = config.speakerThreshold;
  ui.checkboxConsent.hidden = consentPolicy === "spoken";
  ui.recordHint.textContent = lengthRule();
  session = new Session(config);
  ownReading ||= sampleReading({ api, failed, clearProblem, sayBeside });
  spoken ||= spokenConsent({
    api,
    problem,
    failed,
    clearProblem,
    sayBeside,
    keepSample: () => ui.keepSample.checked,
    languages: config.consentLanguages,
    changed: consentChanged,
    next: () => ui.record.focus(),
  });
  reflectionFlow ||= reflections({
    api,
    stream: (path, options) => signedRequest(path, options, requestStream),
    problem,
    failed,
    clearProblem,
    sayBeside,
    refreshLibrary: () => refreshLibrary(),
    config,
    consentId: () => spoken.verifiedId(),
  });
  let signedIn = null;
  try {
    signedIn = await session.start();
  } catch (error) {
    problem(error, config.mode === "embedded" ? boot : null);
  }
  if (signedIn) showApp();
  else if (config.mode === "supabase") showSignIn();
  else ui.session.textContent = "Not signed in.";
}

function showSignIn() {
  ui.session.textContent = "Not signed in.";
  ui.signOut.hidden = true;
  ui.signIn.hidden = false;
  for (const section of [ui.sampleSection, ui.speakSection, ui.library, reflectionFlow.section]) section.hidden = true;
}

function showApp() {
  const dev = session.config.mode === "embedded" ? " (local dev session)" : "";
  ui.session.textContent = `Signed in as ${session.email || "you"}${dev}.`;
  ui.signOut.hidden = session.config.mode === "embedded";
  ui.signIn.hidden = true;
  for (const section of [ui.sampleSection, ui.speakSection, ui.library, reflectionFlow.section]) section.hidden = false;
  refreshLibrary();
  reflectionFlow.load();
  spoken.restore();
}

ui.signInForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearProblem();
  const email = ui.email.value.trim();
  ui.signInStatus.textContent = "Sending…";
  try {
    await session.sendMagicLink(email);
    ui.signInStatus.textContent = `We sent a sign-in link to ${email}. Open it to come back here signed in.`;
  } catch (error) {
    ui.signInStatus.textContent = "";
    failed(error, ui.email, { retry: () => ui.signInForm.requestSubmit() });
  }
});

ui.signOut.addEventListener("click", async () => {
  await session.signOut();
  showSignIn();
});

// ---- the sample: record or choose, then upload once consent is given ----

ui.record.addEventListener("click", async () => {
  if (recorder.recording) {
    await stopRecording();
    return;
  }
  clearProblem();
  try {
    await recorder.start();
  } catch (error) {
    failed(error, ui.record); // the microphone refused, or there is none: said beside Record
    return;
  }
  ui.record.textContent = "Stop";
  ui.record.classList.add("recording");
  const tick = () => {
    const seconds = Math.floor(recorder.seconds);
    status(ui.sampleStatus, `Recording… ${seconds} s. Press Stop when done (${bestLength()} is best).`);
    if (recorder.seconds >= maxRecordingSeconds()) stopRecording();
  };
  tick();
  recordingTimer = setInterval(tick, 250);
});

// ---- the one length rule: the default provider's, as /config.json reports it ----

const seconds = (value) => String(Number(value.toFixed(1)));

function bestLength() {
  const [low, high] = sampleRules.recommendedDurationS;
  return `${seconds(low)} to ${seconds(high)} s`;
}

function lengthRule() {
  return `Read anything aloud for ${bestLength()} in a quiet room; under ${seconds(sampleRules.minDurationS)} s of speech is refused.`;
}

function maxRecordingSeconds() {
  return Math.min(MAX_RECORDING_S, sampleRules.maxDurationS ?? MAX_RECORDING_S);
}

async function stopRecording() {
  clearInterval(recordingTimer);
  ui.record.textContent = "Record";
  ui.record.classList.remove("recording");
  takeSample(await recorder.stop());
}

ui.file.addEventListener("change", () => {
  const file = ui.file.files[0];
  if (file) takeSample(file);
});

ui.consent.addEventListener("change", () => {
  if (ui.consent.checked) clearProblem();
  maybeUpload();
});

function takeSample(file) {
  pending = file;
  maybeUpload();
}

/** The spoken consent was verified, or is gone: the box is offered only while it is needed and taken. */
function consentChanged() {
  ui.checkboxConsent.hidden = consentPolicy === "spoken" || spoken.verifiedId() !== null;
  maybeUpload();
  if (reflectionFlow) reflectionFlow.consentVerified();
}

/** The consent an upload goes under: the verified spoken one, else the ticked box; null while there is none. */
function consentFields() {
  const consentId = spoken.verifiedId();
  if (consentId) return { consentId };
  if (consentPolicy === "checkbox" && ui.consent.checked) return { consent: "true" };
  return null;
}

function maybeUpload() {
  if (!pending) return;
  if (!consentFields()) {
    const how =
      consentPolicy === "spoken"
        ? "Read your consent phrase above to upload it."
        : "Tick the consent box above, or read your consent phrase, to upload it.";
    status(ui.sampleStatus, `${pending.name} is ready. ${how}`);
    return;
  }
  const file = pending;
  const name = pendingName || sampleName(file);
  pending = null;
  pendingName = null;
  upload(file, name);
}

/** The name a new sample goes by: the one typed (then cleared), else its file's; "(2)" added when it is taken. */
function sampleName(file) {
  const wanted = studio.takeSampleName() || nameFromFile(file.name);
  return unusedName(wanted, [...samples.map((s) => s.name), ...voices.map((v) => v.name)]);
}

/** A refusal of the sample (its file, its length, its speaker…), said beside where it was given. */
function sampleRefused(message) {
  sayBeside(ui.file, message, ui.file.closest(".row"));
}

// Refusals that mean the spoken consent named can no longer cover a sample: the visitor starts with a new phrase.
const CONSENT_GONE = new Set(["consent_expired", "consent_not_verified", "consent_recording_required"]);

/**
 * Upload `file` as `name`; `key` makes a repeat of this upload (automatic or "Try again") store it once at most,
 * under the same name (the box it was typed in was emptied by the first try).
 */
async function upload(file, name, key = newIdempotencyKey()) {
  clearProblem();
  const mine = ++sampleRun;
  hideQuality();
  // Speak keeps the voice it had until the new sample is ready: a refused upload must not take it away.
  status(ui.sampleStatus, `Uploading ${file.name}…`);
  const form = new FormData();
  const consent = consentFields();
  if (!consent) {
    // The consent went between choosing the file and now (e.g. its phrase expired): wait for another.
    pendingName = name;
    takeSample(file);
    return;
  }
  for (const [field, value] of Object.entries(consent)) form.append(field, value);
  // A spoken consent carries the choice to keep the sample itself (given with its phrase).
  if (consent.consent && ui.keepSample.checked) form.append("keep_sample", "true");
  form.append("name", name);
  form.append("file", file, file.name);
  let accepted;
  try {
    accepted = await api("/api/v1/voice-samples", { method: "POST", form, headers: { "Idempotency-Key": key } });
  } catch (error) {
    status(ui.sampleStatus, "");
    if (error instanceof ApiError && CONSENT_GONE.has(error.code)) {
      // Said beside "Get a new phrase": that is what the visitor does next.
      spoken.forget(error.message);
      // The same file goes once a new phrase is read: only the consent was missing.
      pending = file;
      pendingName = name;
      return;
    }
    if (passing(error)) {
      problem(error, () => upload(file, name, key));
      return;
    }
    sampleRefused(error.message);
    chooseAgain();
    return;
  }
  // Stored: the box is emptied, so choosing the same file again (a second sample of it) is a change it hears.
  ui.file.value = "";
  await followSample(accepted.sampleId, mine);
  refreshLibrary();
}

async function followSample(sampleId, mine) {
  status(ui.sampleStatus, "Checking the sample…");
  for (;;) {
    let sample;
    try {
      sample = await api(`/api/v1/voice-samples/${sampleId}/status`);
    } catch (error) {
      if (mine === sampleRun) problem(error, () => followSample(sampleId, mine));
      return;
    }
    if (mine !== sampleRun) return;
    if (sample.quality) showQuality(sample.quality, sample.status === "failed");
    if (sample.status === "awaiting_reading") {
      status(ui.sampleStatus, "One more step: read the phrase below aloud.");
      await ownReading.ask(sampleId);
      await sleep(POLL_MS);
      continue;
    }
    ownReading.hide();
    if (sample.status === "held") {
      status(
        ui.sampleStatus,
        "Your sample is waiting for a person to look at it: its voice sounds the same as a voice already enrolled " +
          "here. Nothing of it is sent to a voice provider until then; ask this site's support if it is yours.",
      );
      return;
    }
    if (sample.status === "ready") {
      status(ui.sampleStatus, `Sample ready: ${verdictWords(sample.quality)}`);
      setTarget({ sampleId }, "the voice of your new sample");
      return;
    }
    if (sample.status === "failed") {
      status(ui.sampleStatus, "");
      sampleRefused(sampleFailureWords(sample, speakerThreshold));
      chooseAgain();
      return;
    }
    await sleep(POLL_MS);
  }
}

/** After a refused sample: only another recording or file can do better (a refused one keeps its report). */
function chooseAgain() {
  ui.file.value = "";
  status(ui.sampleStatus, "Record again, or choose another file.");
}

function verdictWords(quality) {
  if (!quality) return "checked.";
  return {
    good: "good quality.",
    usable: "usable; see the advice below for a better clone.",
    poor: "poor quality; the clone will sound like it. See the advice below.",
  }[quality.verdict];
}

/** The report; a refused sample's verdict says so, whatever its measurements alone would say. */
function showQuality(q, refused = false) {
  const number = (value, digits, unit) => (value === null || value === undefined ? "—" : `${value.toFixed(digits)} ${unit}`);
  $("q-duration").textContent = `${q.durationS.toFixed(1)} s (${q.speechDurationS.toFixed(1)} s of speech)`;
  $("q-loudness").textContent = number(q.loudnessLufs, 1, "LUFS");
  $("q-snr").textContent = number(q.snrDb, 0, "dB");
  $("q-speech").textContent = `${Math.round(q.speechRatio * 100)} % of the time`;
  const verdict = $("q-verdict");
  verdict.textContent = refused ? "refused" : q.verdict;
  verdict.className = `verdict ${refused ? "poor" : q.verdict}`;
  // A refused sample has no results to be best for: its refusal says what the next one needs.
  const advice = refused ? q.advice.filter((line) => !line.endsWith("for best results")) : q.advice;
  ui.advice.replaceChildren(...advice.map((line) => element("li", adviceWords(line))));
  ui.quality.hidden = false;
  ui.advice.hidden = advice.length === 0;
}

function hideQuality() {
  ui.quality.hidden = true;
  ui.advice.hidden = true;
}

// ---- speaking ----

function setTarget(ref, label) {
  target = ref ? { ref, label } : null;
  ui.speak.disabled = target === null && !speaking;
  ui.speakTarget.textContent = target
    ? `Speaks with ${label}.`
    : "Upload a sample first; its voice speaks your text.";
  studio.markSelected();
  showLikeness();
}

/** The numbers behind a likeness, in their toggle (closed: a person reads the words first); hidden when none. */
function showNumbers(details, numbers) {
  const paragraph = details.querySelector("p");
  if (paragraph.textContent !== numbers) paragraph.textContent = numbers;
  details.hidden = !numbers;
}

/** How much the voice Speak uses sounds like its sample, once that voice is made and judged. */
function showLikeness() {
  const ref = target && target.ref;
  const voiceId = ref && (ref.voiceId || studio.voiceOf(ref.sampleId));
  const voice = voiceId && voices.find((v) => v.id === voiceId);
  const judged = voice && {
    ready: voice.status === "ready",
    likeness: voice.likeness,
    threshold: voice.likeness_threshold,
    error: voice.likeness_error,
    provider: voice.tts_provider,
    baseline: voice.likeness_baseline,
  };
  const words = judged ? likenessWords(judged) : "";
  if (ui.speakLikeness.textContent !== words) ui.speakLikeness.textContent = words;
  ui.speakLikeness.hidden = !words;
  showNumbers(ui.speakLikenessNumbers, judged ? likenessNumbers(judged) : "");
}

ui.speak.addEventListener("click", speak);

async function speak() {
  const text = ui.text.value.trim();
  if (!text) {
    clearProblem();
    sayBeside(ui.text, "Type some text to speak first.", ui.text.nextElementSibling);
    ui.text.focus();
    return;
  }
  if (!target || speaking) return;
  const refusal = textRefusal(text);
  if (refusal) {
    clearProblem();
    sayBeside(ui.text, refusal, ui.text.nextElementSibling);
    ui.text.focus();
    return;
  }
  clearProblem();
  const mine = ++speakRun;
  // aria-disabled, not disabled: a disabled button drops the focus to <body>.
  speaking = true;
  ui.speak.setAttribute("aria-disabled", "true");
  ui.result.hidden = true;
  // The last result goes: its audio must not pass for the new one.
  lastJob = null;
  ui.player.pause();
  ui.player.removeAttribute("src");
  ui.player.load();
  showProgress(null);
  let job;
  try {
    const headers = { "Idempotency-Key": newIdempotencyKey() };
    // A sample not cloned yet makes its voice, which voicegate names after it (made its own: "Kitchen (2)").
    job = await api("/api/v1/clone", { method: "POST", json: { ...target.ref, text }, headers });
  } catch (error) {
    endProgress("");
    const aboutText = error instanceof ApiError && TEXT_REFUSALS.has(error.code);
    const anchor = aboutText ? ui.text.nextElementSibling : undefined;
    failed(error, aboutText ? ui.text : ui.speak, { retry: speak, anchor });
    return;
  }
  // A sample's first Speak makes its voice: it is listed now, not once the job ends (nor, if it never does, never).
  if (!voices.some((voice) => voice.id === job.voiceId)) refreshLibrary();
  await followJob(job.jobId, mine);
}

async function followJob(jobId, mine) {
  for (;;) {
    let job;
    try {
      job = await api(`/api/v1/clone/${jobId}/status`);
    } catch (error) {
      if (mine === speakRun) problem(error, () => followJob(jobId, mine));
      return;
    }
    if (mine !== speakRun) return;
    if (job.status === "succeeded") {
      await showResult(jobId);
      return;
    }
    if (job.status === "canceled") {
      // Canceled from its voice's clips (studio.js), here or in another tab: nothing is coming.
      endProgress("Canceled: nothing of it is kept.");
      refreshLibrary();
      return;
    }
    if (job.status === "failed") {
      endProgress("");
      // The queue gave up on it (may pass: "Try again" in the bar), or it failed for good (beside Speak).
      if (job.error && TRANSIENT_JOB_ERRORS.has(job.error.code)) problem(jobFailureWords(job.error), speak);
      else sayBeside(ui.speak, jobFailureWords(job.error));
      refreshLibrary();
      return;
    }
    showProgress(job.progress || null);
    await sleep(POLL_MS);
  }
}

function showProgress(progress) {
  ui.progress.hidden = false;
  if (progress && progress.total > 0) {
    ui.progress.max = progress.total;
    ui.progress.value = progress.done;
    status(ui.speakStatus, `Synthesizing… ${progress.done} of ${progress.total} ${progress.unit}`);
  } else {
    ui.progress.removeAttribute("value"); // indeterminate: the job does not report its progress
    status(ui.speakStatus, "Synthesizing…");
  }
}

function endProgress(message) {
  ui.progress.hidden = true;
  speaking = false;
  ui.speak.removeAttribute("aria-disabled");
  ui.speak.disabled = target === null;
  status(ui.speakStatus, message);
}

async function showResult(jobId) {
  let result;
  try {
    result = await api(`/api/v1/clone/${jobId}/result`);
  } catch (error) {
    endProgress("");
    failed(error, ui.speak, { retry: () => showResult(jobId) }); // e.g. its file altered since it was stored
    return;
  }
  lastJob = jobId;
  ui.player.src = result.audioUrl;
  ui.download.href = downloadUrl(result.audioUrl, `voicegate-${jobId.slice(0, 8)}.wav`);
  ui.result.hidden = false;
  const seconds = result.durationMs ? ` ${(result.durationMs / 1000).toFixed(1)} s of speech.` : "";
  endProgress(`Done.${seconds}`);
  // Browsers may refuse to start audio without a fresh click; the controls are there either way.
  ui.player.play().catch(() => {});
  refreshLibrary();
}

// Result URLs are signed for a few minutes: an expired one is asked for again, once per job.
ui.player.addEventListener("error", () => {
  const jobId = lastJob;
  lastJob = null;
  if (jobId) showResult(jobId);
});

/** The signed URL asking Storage to send the file as an attachment (works across origins). */
function downloadUrl(url, name) {
  const download = new URL(url, window.location.href);
  download.searchParams.set("download", name);
  return download.href;
}

// ---- the user's samples and voices ----

async function refreshLibrary() {
  const mine = ++libraryRun;
  let sampleList, voiceList;
  try {
    [sampleList, voiceList] = await Promise.all([api("/api/v1/voice-samples"), api("/api/voices")]);
  } catch {
    return; // the list is secondary: the main actions report their own failures
  }
  if (mine !== libraryRun) return;
  voices = voiceList.voices;
  samples = sampleList.samples;
  const focused = document.activeElement;
  ui.samples.replaceChildren(...keepRenaming(ui.samples, samples.map(sampleItem), "sampleId"));
  if (samples.length === 0) ui.samples.append(element("li", "No samples yet.", "muted"));
  ui.voices.replaceChildren(...keepRenaming(ui.voices, voices.map(voiceItem), "voiceId"));
  if (voices.length === 0) ui.voices.append(element("li", "No voices yet.", "muted"));
  // A kept row was taken out and put back, which takes the focus from the box being typed in.
  if (focused && focused.isConnected && document.activeElement !== focused) focused.focus();
  studio.listed(samples);
  studio.voicesListed(voices);
  sampleSet.listed(samples);
  // A voice made elsewhere (by the API, another tab) is ready to speak with before any sample is taken here.
  const ready = target === null && voices.find((voice) => voice.status === "ready");
  if (ready) setTarget({ voiceId: ready.id }, `the voice “${ready.name}”`);
  showLikeness();
}

/**
 * The rows drawn anew (`items`), except that a row of `list` whose name is being edited (its rename box open) stays
 * as it is: a listing that lands meanwhile (a Speak's end, a voice made) must not take the box and what was typed.
 */
function keepRenaming(list, items, key) {
  const renaming = new Map();
  for (const li of list.querySelectorAll("li")) {
    if (li.querySelector("form.rename")) renaming.set(li.dataset[key], li);
  }
  return items.map((li) => renaming.get(li.dataset[key]) || li);
}

function sampleItem(sample) {
  const label = sample.name ? `sample “${sample.name}”` : `sample of ${new Date(sample.createdAt).toLocaleString()}`;
  const actions = [];
  if (sample.status === "ready") {
    actions.push(button("Use", `Use ${label}`, () => setTarget({ sampleId: sample.sampleId }, `the voice of ${label}`)));
  }
  const path = `/api/v1/voice-samples/${sample.sampleId}`;
  actions.push(
    button("Delete", `Delete ${label}`, (event) =>
      confirmDelete(event.currentTarget, `the ${label}`, (origin) => remove(path, "sampleId", sample.sampleId, origin)),
    ),
  );
  return studio.sampleItem(sample, actions);
}

function voiceItem(voice) {
  return studio.voiceItem(voice, [
    button("Use", `Use voice ${voice.name}`, () => setTarget({ voiceId: voice.id }, `the voice “${voice.name}”`)),
    button("Delete", `Delete voice ${voice.name}`, (event) =>
      confirmDelete(event.currentTarget, `the voice “${voice.name}”`, (origin) =>
        remove(`/api/voices/${voice.id}`, "voiceId", voice.id, origin),
      ),
    ),
  ]);
}

/** Delete what `path` names (its Delete button, `origin`, said yes to); whether it went. */
async function remove(path, key, id, origin) {
  clearProblem();
  try {
    await api(path, { method: "DELETE" });
  } catch (error) {
    if (error.status !== 404) {
      failed(error, origin, { retry: () => remove(path, key, id, origin), anchor: origin.closest(".actions") });
      return false;
    }
  }
  if (target && target.ref[key] === id) setTarget(null);
  await refreshLibrary();
  // A reflection whose voice this was can no longer launch: its state is read again (and a session shown ends).
  if (key === "voiceId") reflectionFlow.voicesChanged();
  return true;
}

// ---- deleting, asked first; the focus then goes to the next item of the list (or its heading) ----

/**
 * Ask before deleting `what` (the Delete button `origin` asked); Cancel or Escape leaves it, focus back on `origin`.
 * On Delete, `erase(origin)` deletes it and says whether it went; the focus then goes to the next item of the list.
 */
function confirmDelete(origin, what, erase) {
  const list = origin.closest("ul");
  const index = [...list.children].indexOf(origin.closest("li"));
  ui.confirmDeleteText.textContent = `Delete ${what}? This cannot be undone.`;
  asked = { origin, erase, list, index };
  ui.confirmDelete.showModal();
  document.getElementById("confirm-delete-cancel").focus();
}

// What the open dialog asks about, until it is answered. The answer is taken from the form's submit, which fires
// as the button is pressed, not from the dialog's `close` event alone: that one is queued, and a loaded browser
// runs a key press before it, so a dialog closed with Escape and opened again at once got the first close's
// event after the second opening, which then went as a Cancel while its Delete did nothing.
let asked = null;

async function answer(confirmed) {
  const question = asked;
  asked = null;
  if (!question) return;
  if (!confirmed) {
    question.origin.focus();
    return;
  }
  if (await question.erase(question.origin)) focusInList(question.list, question.index);
  else question.origin.focus();
}

ui.confirmDelete.querySelector("form").addEventListener("submit", (event) => {
  answer(event.submitter?.value === "delete");
});
// Escape (or anything else that closes it unanswered); a late close of an earlier opening finds it open again.
ui.confirmDelete.addEventListener("close", () => {
  if (!ui.confirmDelete.open) answer(false);
});

function focusInList(list, index) {
  const items = [...list.querySelectorAll("li")].filter((li) => li.querySelector("button"));
  const next = items[Math.min(index, items.length - 1)];
  if (next) next.querySelector("button").focus();
  else document.getElementById(list.getAttribute("aria-labelledby")).focus();
}

function item(text, actions) {
  const li = element("li");
  const group = element("span", "", "actions");
  group.append(...actions);
  li.append(element("span", text, "what"), group);
  return li;
}

function button(text, name, onClick) {
  const node = element("button", text, "small");
  node.type = "button";
  node.setAttribute("aria-label", name);
  node.addEventListener("click", onClick);
  return node;
}

function element(tag, text = "", className = "") {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

function status(node, text) {
  node.textContent = text;
}

// A sign-in link opened in this very tab changes only the fragment: no new page load to start from.
window.addEventListener("hashchange", () => {
  if (/[#&](access_token|error)=/.test(window.location.hash)) boot();
});

boot();
