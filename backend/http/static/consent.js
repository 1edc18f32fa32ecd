// Spoken consent, the page's first step: the visitor's name (and the phrase's language, where the server offers
// more than one) → "Get my phrase" → the phrase, shown large, read aloud into the microphone → sent → "Consent
// verified", or in words why not (in the language of the phrase), and read again (or a new phrase, once it expired). The consent's id is kept for the tab (sessionStorage), so a reload goes on
// from where it was; the samples uploaded after it name it (`consentId`).

import { ApiError } from "./api.js";
import { Recorder } from "./recorder.js";
import { LANGUAGE_NAMES, rejectionWords } from "./words.js";

const STORED = "voicegate.consent";
// Longer than anyone takes to read the phrase (about 10 s): a recording left running stops by itself.
const MAX_READING_S = 40;

const $ = (id) => document.getElementById(id);

/**
 * Wire the spoken consent. `deps`: `api(path, options)` (requests as the signed-in user), `problem(error, retry)` /
 * `clearProblem()` (the page's error bar), `failed(error, control, {retry})` (a refusal beside its control, an
 * outage in the bar), `sayBeside(control, message)` (a refusal beside its control), `keepSample()` (whether the box
 * to keep the sample is ticked), `languages` (the languages the server offers a phrase in, its default first), and
 * `changed()`, called when the consent becomes verified or stops being usable, and `next()`, which moves the focus on
 * to the sample once the reading is verified.
 */
export function spokenConsent(deps) {
  const ui = {
    form: $("phrase-form"),
    name: $("subject-name"),
    languageRow: $("phrase-language-row"),
    language: $("phrase-language"),
    get: $("get-phrase"),
    step: $("phrase-step"),
    phrase: $("phrase"),
    expires: $("phrase-expires"),
    read: $("read-phrase"),
    status: $("phrase-status"),
  };
  const recorder = new Recorder();
  let consent = null; // {consentId, phrase, status, expiresAt, language}
  offerLanguages(deps.languages);
  let ticking = null;

  /** The verified consent's id, or null. */
  function verifiedId() {
    return consent && consent.status === "verified" ? consent.consentId : null;
  }

  /** Go on with the consent this tab had (if it is still usable), or start afresh. */
  async function restore() {
    const id = sessionStorage.getItem(STORED);
    if (!id) return show(null);
    let read;
    try {
      read = await deps.api(`/api/v1/consents/${id}`);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404) deps.problem(error, restore);
      return show(null);
    }
    // Still usable: verified, or taking a recording (the server's state; the clock here too, for one that lapses
    // while the page was away).
    const lapsed = read.expiresAt && Date.parse(read.expiresAt) <= Date.now();
    if (read.status === "verified") show(read);
    else if ((read.status === "awaiting_recording" || read.status === "rejected") && !lapsed) show(read);
    else show(null);
  }

  /**
   * Forget the consent (it expired, or the server no longer takes it): the visitor starts with a new phrase, and
   * `why` (when given) is said beside the button that gets it.
   */
  function forget(why = null) {
    show(null);
    ui.get.textContent = "Get a new phrase";
    if (why) deps.sayBeside(ui.get, why);
  }

  /** The languages offered, each named in itself; the first the reader's browser prefers, else the server's. */
  function offerLanguages(languages) {
    ui.language.replaceChildren(
      ...languages.map((code) => {
        const option = new Option(LANGUAGE_NAMES[code] || code, code);
        option.lang = code;
        return option;
      }),
    );
    const preferred = (navigator.languages || []).map((tag) => tag.split("-")[0].toLowerCase());
    ui.language.value = preferred.find((code) => languages.includes(code)) || languages[0];
    ui.languageRow.hidden = languages.length < 2;
  }

  function show(next) {
    consent = next;
    if (next) sessionStorage.setItem(STORED, next.consentId);
    else sessionStorage.removeItem(STORED);
    const verified = verifiedId() !== null;
    ui.form.hidden = verified;
    ui.get.textContent = next ? "Get a new phrase" : "Get my phrase";
    ui.step.hidden = !next || verified;
    ui.status.classList.toggle("verified", verified);
    if (next && next.subjectName) ui.name.value = next.subjectName;
    if (next && next.language && deps.languages.includes(next.language)) ui.language.value = next.language;
    if (next && !verified) {
      ui.phrase.textContent = next.phrase;
      ui.phrase.lang = next.language || "en";
      const until = new Date(next.expiresAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      ui.expires.textContent = `Read it before ${until}.`;
    }
    ui.status.textContent = verified
      ? "Consent verified. Every sample you give below is checked against the voice that read the phrase."
      : "";
    deps.changed();
  }

  ui.form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (recorder.recording) return;
    deps.clearProblem();
    const subjectName = ui.name.value.trim();
    if (!subjectName) return;
    ui.status.textContent = "Making your phrase…";
    const language = ui.language.value || deps.languages[0];
    let made;
    try {
      made = await deps.api("/api/v1/consents", {
        method: "POST",
        json: { subjectName, language, keepSample: deps.keepSample() },
      });
    } catch (error) {
      ui.status.textContent = "";
      deps.failed(error, ui.get, { retry: () => ui.form.requestSubmit() });
      return;
    }
    show({ ...made, subjectName, language });
    ui.status.textContent = "Your phrase is ready: press Start reading, read it aloud, then press Stop reading.";
    ui.phrase.focus();
  });

  ui.read.addEventListener("click", async () => {
    if (recorder.recording) {
      await stop();
      return;
    }
    deps.clearProblem();
    try {
      await recorder.start();
    } catch (error) {
      deps.failed(error, ui.read);
      return;
    }
    ui.read.textContent = "Stop reading";
    ui.read.classList.add("recording");
    const tick = () => {
      ui.status.textContent = `Reading… ${Math.floor(recorder.seconds)} s. Press Stop reading when you have said all of it.`;
      if (recorder.seconds >= MAX_READING_S) stop();
    };
    tick();
    ticking = setInterval(tick, 250);
  });

  async function stop() {
    clearInterval(ticking);
    ui.read.textContent = "Start reading";
    ui.read.classList.remove("recording");
    send(await recorder.stop());
  }

  /** Send the reading; say the verdict. A refusal of the request itself (e.g. too large) is said beside the button. */
  async function send(file) {
    const mine = consent;
    if (!mine) return; // the consent was given up while the phrase was being read
    ui.status.textContent = "Checking what you said…";
    const form = new FormData();
    form.append("file", file, file.name);
    let verdict;
    try {
      verdict = await deps.api(`/api/v1/consents/${mine.consentId}/recording`, { method: "POST", form });
    } catch (error) {
      ui.status.textContent = "";
      // 409: verified meanwhile (another tab): read it as it is.
      if (error instanceof ApiError && error.status === 409) return restore();
      // The phrase's time passed: refused before the recording was heard; a new phrase is needed.
      if (error instanceof ApiError && error.code === "consent_expired") {
        forget(rejectionWords("expired", mine.language));
        ui.get.focus();
        return;
      }
      deps.failed(error, ui.read, { retry: () => send(file) });
      return;
    }
    if (verdict.status === "verified") {
      show({ ...mine, status: "verified" });
      deps.next();
      return;
    }
    ui.status.textContent = "Press Start reading and read the phrase again.";
    deps.sayBeside(ui.read, rejectionWords(verdict.reason, mine.language));
    ui.read.focus();
  }

  return { restore, verifiedId, forget };
}
