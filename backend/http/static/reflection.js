// The reflection flow, as a conversation app gates on it: create a reflection, clone its voice from a
// recording or a file, listen to the preview and confirm it, see whether it is ready to launch (and why
// not), start a session, and hear its speech as it streams from `/v1/reflections/{id}/speech`.

import { ApiError, newIdempotencyKey, sleep } from "./api.js";
import { Recorder } from "./recorder.js";
import { durationWords, launchReasonWords, likenessNumbers, likenessWords as likeness } from "./words.js";

const POLL_MS = 500;
// While a session is shown, how often its gate is read again: a voice deleted or re-cloned in another tab, or by an
// app through the API, closes it with no action on this page.
const SESSION_POLL_MS = 5000;
// The speech route streams MP3 frame by frame: a MediaSource plays it as it arrives.
const STREAM_FORMAT = "mp3";
const STREAM_TYPE = "audio/mpeg";

const $ = (id) => document.getElementById(id);

/**
 * Wire the reflection section. `deps`: `api(path, options)` and `stream(path, options)` (requests as the
 * signed-in user), `problem(error, retry)` / `clearProblem()` (the page's error bar), `failed(error, control,
 * {retry})` (a refusal beside its control, an outage in the bar), `sayBeside(control, message)` (a refusal the user
 * must act on, beside its control), `refreshLibrary()` (the page's list of voices, which holds reflections' voices
 * too), `config` (/config.json), `consentId()` (the verified spoken consent of step 1, or null).
 */
export function reflections(deps) {
  const ui = {
    section: $("reflection-section"),
    create: $("reflection-create"),
    name: $("reflection-name"),
    pickRow: $("reflection-pick-row"),
    pick: $("reflection-pick"),
    detail: $("reflection-detail"),
    heading: $("reflection-heading"),
    launch: $("reflection-launch"),
    reasons: $("reflection-reasons"),
    voice: $("reflection-voice"),
    likeness: $("reflection-likeness"),
    likenessNumbers: $("reflection-likeness-numbers"),
    consent: $("reflection-consent"),
    consentText: $("reflection-consent-text"),
    record: $("reflection-record"),
    file: $("reflection-file"),
    preview: $("reflection-preview"),
    previewPlayer: $("reflection-preview-player"),
    confirm: $("reflection-confirm"),
    start: $("reflection-start"),
    session: $("reflection-session"),
    speech: $("reflection-speech"),
    text: $("reflection-text"),
    speak: $("reflection-speak"),
    speakStatus: $("reflection-speak-status"),
    player: $("reflection-player"),
  };
  const recorder = new Recorder();
  let current = null; // the reflection shown: {id, name}
  let watch = 0; // bumped per reflection shown or clone started, so an older poll loop stops
  let pending = null; // a recording or file waiting for the consent box
  let source = null; // the control it came from (Record, or the file box): a refusal of it is said beside that
  let session = null; // the session shown as started: {id}, until the gate closes or another reflection is shown

  ui.consentText.textContent = deps.config.consent.text;
  // Where the server takes only a spoken consent, the box would be refused: step 1's phrase stands for it.
  const spokenOnly = deps.config.consentPolicy === "spoken";
  ui.consent.closest(".consent").hidden = spokenOnly;

  async function load(selectId = null) {
    let list;
    try {
      list = (await deps.api("/v1/reflections")).reflections;
    } catch (error) {
      deps.problem(error, () => load(selectId));
      return;
    }
    ui.pick.replaceChildren(...list.map((r) => new Option(r.name, r.id)));
    ui.pickRow.hidden = list.length === 0;
    const chosen = list.find((r) => r.id === selectId) || list[0];
    if (chosen) {
      ui.pick.value = chosen.id;
      show(chosen);
    } else {
      ui.detail.hidden = true;
    }
  }

  function show(reflection) {
    current = { id: reflection.id, name: reflection.name };
    ui.heading.textContent = reflection.name;
    ui.detail.hidden = false;
    endSession();
    follow(++watch);
  }

  /** The session shown ends: its words go with it, and what only a started session offers (speech). */
  function endSession() {
    const hadFocus = !ui.speech.hidden && ui.speech.contains(document.activeElement);
    session = null;
    ui.session.textContent = "";
    ui.speech.hidden = true;
    // The focus does not fall to <body> with the hidden controls: the line saying why takes it.
    if (hadFocus) ui.launch.focus();
  }

  /** While `started` is the session shown, read its gate now and then; once closed, the voice state says why. */
  async function watchSession(started) {
    while (session === started) {
      await sleep(SESSION_POLL_MS);
      if (session !== started) return;
      let now;
      try {
        now = await deps.api(`/v1/sessions/${started.id}`);
      } catch {
        continue; // secondary: the next action the user takes says what failed
      }
      if (session === started && !now.launchReady) follow(++watch);
    }
  }

  /** Read the voice state, and again while it is moving on by itself (cloning, making its preview). */
  async function follow(mine) {
    for (;;) {
      let state;
      try {
        state = await deps.api(`/v1/reflections/${current.id}/voice`);
      } catch (error) {
        if (mine === watch) deps.problem(error, () => follow(mine));
        return;
      }
      if (mine !== watch) return;
      render(state);
      if (!moving(state.voice)) return;
      await sleep(POLL_MS);
    }
  }

  function moving(voice) {
    if (!voice || !voice.attemptId) return false;
    if (["queued", "processing", "verifying"].includes(voice.cloneStatus)) return true;
    return voice.cloneStatus === "ready" && ["pending", "generating"].includes(voice.previewStatus);
  }

  function render(state) {
    const voice = state.voice || {};
    ui.launch.textContent = state.launchReady ? "Ready to launch." : "Not ready to launch yet:";
    ui.launch.className = `launch ${state.launchReady ? "ready" : "blocked"}`;
    // Refused until it is ready (the reasons just above say why): pressed, it could only fail.
    ui.start.disabled = !state.launchReady;
    // The gate closed (the voice deleted, or a new one not ready yet): a session shown as started is no more.
    if (!state.launchReady) endSession();
    showReasons(state.blockingReasons);
    const deleted = state.blockingReasons.includes("voice_deleted");
    ui.voice.textContent = deleted
      ? "Voice: deleted. Record or choose a sample to clone a new one."
      : voiceWords(voice, state.previewError);
    ui.likeness.textContent = deleted ? "" : likenessWords(voice);
    ui.likeness.hidden = !ui.likeness.textContent;
    const numbers = deleted ? "" : likenessNumbers(judged(voice));
    ui.likenessNumbers.querySelector("p").textContent = numbers;
    ui.likenessNumbers.hidden = !numbers;
    const previewReady = voice.previewStatus === "ready" && Boolean(state.previewUrl);
    ui.preview.hidden = !previewReady;
    if (previewReady && ui.previewPlayer.getAttribute("src") !== state.previewUrl) {
      ui.previewPlayer.src = state.previewUrl;
    }
  }

  function showReasons(reasons) {
    ui.reasons.replaceChildren(
      ...reasons.map((reason) => {
        const li = document.createElement("li");
        li.textContent = launchReasonWords(reason);
        return li;
      }),
    );
    ui.reasons.hidden = reasons.length === 0;
  }

  // How much the voice sounds like its samples: the words of words.js, as the main flow says them.
  function likenessWords(voice) {
    return likeness(judged(voice));
  }

  function judged(voice) {
    return {
      ready: voice.cloneStatus === "ready",
      likeness: voice.likeness,
      threshold: voice.likenessThreshold,
      error: voice.likenessError,
      provider: voice.provider,
      baseline: voice.likenessBaseline,
    };
  }

  function voiceWords(voice, previewError) {
    if (!voice.attemptId) return "Voice: none yet.";
    if (voice.cloneStatus === "failed") {
      const why = voice.lastError && voice.lastError.message ? `: ${voice.lastError.message}` : "";
      return `Voice: cloning failed${why}. Record or choose another sample.`;
    }
    if (voice.cloneStatus !== "ready") return `Voice: cloning (${voice.cloneStatus})…`;
    if (previewError) return "Voice: cloned, but its preview file was altered and cannot be played.";
    return {
      pending: "Voice: cloned; making its preview…",
      generating: "Voice: cloned; making its preview…",
      ready: "Voice: cloned. Listen to its preview below.",
      completed: "Voice: cloned, preview confirmed.",
      not_required: "Voice: attached.",
    }[voice.previewStatus] || `Voice: ${voice.cloneStatus}.`;
  }

  // ---- create and choose ----

  ui.create.addEventListener("submit", async (event) => {
    event.preventDefault();
    deps.clearProblem();
    const name = ui.name.value.trim();
    if (!name) return;
    let created;
    try {
      created = await deps.api("/v1/reflections", { method: "POST", json: { name } });
    } catch (error) {
      deps.failed(error, ui.name, { retry: () => ui.create.requestSubmit() });
      return;
    }
    ui.name.value = "";
    await load(created.id);
    ui.heading.focus();
  });

  ui.pick.addEventListener("change", () => {
    const option = ui.pick.selectedOptions[0];
    if (option) show({ id: option.value, name: option.text });
  });

  // ---- clone its voice: record or choose, uploaded once the consent box is ticked ----

  let ticking = null;

  ui.record.addEventListener("click", async () => {
    if (recorder.recording) {
      clearInterval(ticking);
      ui.record.textContent = "Record";
      ui.record.classList.remove("recording");
      take(await recorder.stop(), ui.record);
      return;
    }
    deps.clearProblem();
    try {
      await recorder.start();
    } catch (error) {
      deps.failed(error, ui.record); // the microphone refused, or there is none
      return;
    }
    ui.record.textContent = "Stop";
    ui.record.classList.add("recording");
    const tick = () => (ui.voice.textContent = `Recording… ${Math.floor(recorder.seconds)} s. Press Stop when done.`);
    tick();
    ticking = setInterval(tick, 250);
  });

  ui.file.addEventListener("change", () => {
    if (ui.file.files[0]) take(ui.file.files[0], ui.file);
  });

  ui.consent.addEventListener("change", () => take(null));

  function take(file, from = null) {
    if (file) [pending, source] = [file, from];
    if (!pending) return;
    if (!deps.consentId() && !ui.consent.checked) {
      ui.voice.textContent = spokenOnly
        ? `${pending.name} is ready. Read your consent phrase in step 1 to clone this reflection's voice from it.`
        : `${pending.name} is ready. Tick the consent box to clone this reflection's voice from it.`;
      return;
    }
    const chosen = pending;
    pending = null;
    clone(chosen);
  }

  /** A sample waiting for consent goes once the spoken consent of step 1 is verified. */
  function consentVerified() {
    if (current) take(null);
  }

  async function clone(file, key = newIdempotencyKey()) {
    deps.clearProblem();
    const mine = ++watch;
    ui.voice.textContent = `Uploading ${file.name}…`;
    const form = new FormData();
    // The spoken consent, once verified, covers this voice too (its speaker is checked against the sample's).
    const consentId = deps.consentId();
    if (consentId) form.append("consentId", consentId);
    else form.append("consent", "true");
    // No name: voicegate names the voice after the reflection, "Ada (2)" once an earlier clone's voice is "Ada".
    form.append("file", file, file.name);
    try {
      await deps.api(`/v1/reflections/${current.id}/voice/clone`, {
        method: "POST",
        form,
        headers: { "Idempotency-Key": key },
      });
    } catch (error) {
      ui.voice.textContent = "";
      deps.failed(error, source || ui.file, { retry: () => clone(file, key) });
      ui.file.value = "";
      return;
    }
    ui.file.value = "";
    // The clone made (or renewed) the reflection's voice: Voices lists it now, not after a reload.
    deps.refreshLibrary();
    await follow(mine);
    if (mine === watch) deps.refreshLibrary(); // and as it ended: ready, or failed
  }

  // ---- the preview, heard and confirmed ----

  ui.confirm.addEventListener("click", async () => {
    deps.clearProblem();
    try {
      await deps.api(`/v1/reflections/${current.id}/voice/preview/complete`, { method: "POST" });
    } catch (error) {
      deps.failed(error, ui.confirm, { retry: () => ui.confirm.click() });
      return;
    }
    // The confirm button goes with the preview: focus moves on to what comes next.
    await follow(++watch);
    ui.start.focus();
  });

  // ---- launch: a session, or every reason it is refused ----

  /** A launch refused by the gate (e.g. a new voice came meanwhile): its reasons shown, the button off again. */
  function blocked(error) {
    if (!(error instanceof ApiError) || error.code !== "launch_blocked") return false;
    showReasons(error.problem.blockingReasons || []);
    ui.launch.textContent = "Not ready to launch yet:";
    ui.launch.className = "launch blocked";
    ui.start.disabled = true;
    endSession();
    follow(++watch); // and what changed, read again
    return true;
  }

  ui.start.addEventListener("click", async () => {
    deps.clearProblem();
    let started;
    try {
      started = await deps.api(`/v1/reflections/${current.id}/sessions`, { method: "POST" });
    } catch (error) {
      if (blocked(error)) {
        // The button goes off, and with it the focus: the words take it, beside the button.
        deps.sayBeside(ui.start, error.message);
        ui.launch.focus();
      } else deps.failed(error, ui.start, { retry: () => ui.start.click() });
      return;
    }
    session = { id: started.id };
    ui.session.textContent = `Session started (${started.runtime.provider} voice, ${started.runtime.sampleRate / 1000} kHz).`;
    ui.speech.hidden = false;
    ui.text.focus();
    watchSession(session);
  });

  // ---- speech, heard while it streams ----

  ui.speak.addEventListener("click", async () => {
    if (ui.speak.getAttribute("aria-disabled") === "true") return;
    const text = ui.text.value.trim();
    if (!text) {
      deps.clearProblem();
      deps.sayBeside(ui.text, "Type what the reflection should say first.");
      ui.text.focus();
      return;
    }
    deps.clearProblem();
    // aria-disabled, not disabled: the button keeps the focus while the speech plays.
    ui.speak.setAttribute("aria-disabled", "true");
    ui.speakStatus.textContent = "Speaking…";
    // From the press to the last byte, as the user waits for it (not from the answer's headers, which a short
    // text's whole stream may follow within a millisecond: "Streamed in 0.0 s").
    const pressed = performance.now();
    const since = (then) => ((performance.now() - then) / 1000).toFixed(1);
    try {
      const response = await deps.stream(`/v1/reflections/${current.id}/speech`, {
        method: "POST",
        json: { text, format: STREAM_FORMAT },
      });
      let first = null;
      await play(response, ui.player, () => (first = since(pressed)));
      ui.speakStatus.textContent = `Streamed in ${since(pressed)} s; the first audio came after ${first} s.`;
      // The quota left room for only some of the sentences: the stream ended early, and says so in a header.
      const cut = quotaCutWords(response.headers.get("Voicegate-Quota-Cut"), response.headers.get("RateLimit"));
      if (cut) ui.speakStatus.textContent += ` ${cut}`;
    } catch (error) {
      ui.speakStatus.textContent = "";
      if (blocked(error)) {
        // The gate closed since the session started (another tab, an app): the session ends, said where it began.
        deps.sayBeside(ui.start, `The session ended. ${error.message}`);
        ui.launch.focus();
      } else deps.failed(error instanceof ApiError ? error : "The speech stream broke off.", ui.speak, { retry: () => ui.speak.click() });
    } finally {
      ui.speak.removeAttribute("aria-disabled");
    }
  });

  /** A voice was deleted in this page: the reflection shown may have lost its own, and its gate with it. */
  function voicesChanged() {
    if (current) follow(++watch);
  }

  return { load, consentVerified, voicesChanged, section: ui.section };
}

/**
 * Play `response`'s MP3 body as it arrives (MediaSource), or once whole where MediaSource cannot take MP3;
 * `firstAudio()` is called as its first bytes arrive.
 */
async function play(response, player, firstAudio) {
  if (player.src) URL.revokeObjectURL(player.src);
  if (!window.MediaSource || !MediaSource.isTypeSupported(STREAM_TYPE)) {
    const whole = await response.blob();
    firstAudio();
    player.src = URL.createObjectURL(whole);
    player.play().catch(() => {});
    return;
  }
  const source = new MediaSource();
  player.src = URL.createObjectURL(source);
  await new Promise((resolve) => source.addEventListener("sourceopen", resolve, { once: true }));
  const buffer = source.addSourceBuffer(STREAM_TYPE);
  const reader = response.body.getReader();
  let playing = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!playing) firstAudio();
    buffer.appendBuffer(value);
    await new Promise((resolve) => buffer.addEventListener("updateend", resolve, { once: true }));
    if (!playing) {
      playing = true;
      // Browsers may refuse to start audio without a fresh click; the controls are there either way.
      player.play().catch(() => {});
    }
  }
  source.endOfStream();
}

/**
 * What a stream the quota cut short says (its `Voicegate-Quota-Cut` "fit/all" and the `RateLimit` field's `t`, the
 * seconds until the quota resets), or null for a stream spoken whole.
 */
export function quotaCutWords(cut, rateLimit) {
  const found = /^(\d+)\/(\d+)$/.exec(cut || "");
  if (!found) return null;
  const reset = /;t=(\d+)/.exec(rateLimit || "");
  const when = reset ? ` It resets in ${durationWords(Number(reset[1]))}.` : "";
  return `Your quota left room for ${found[1]} of its ${found[2]} sentences: the rest was not spoken.${when}`;
}
