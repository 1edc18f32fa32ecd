// A sample whose voice sounded very close to a voice already enrolled here (by another account): before it is used,
// its uploader reads a phrase aloud in their own voice, which voicegate matches to the sample. A reading in the
// sample's voice makes it ready; one in another voice fails it. Nothing is ever said of whose voice it resembled.

import { ApiError } from "./api.js";
import { Recorder } from "./recorder.js";
import { rejectionWords } from "./words.js";

// Longer than anyone takes to read the phrase (about 10 s): a recording left running stops by itself.
const MAX_READING_S = 40;

const $ = (id) => document.getElementById(id);

/**
 * Wire the reading. `deps`: `api(path, options)`, `failed(error, control, {retry})` and `clearProblem()` as the page
 * has them, and `sayBeside(control, message)`. `ask(sampleId)` shows a phrase for the sample (a new one each time),
 * `hide()` puts it away once the sample has moved on.
 */
export function sampleReading(deps) {
  const ui = {
    step: $("own-reading"),
    phrase: $("own-phrase"),
    expires: $("own-expires"),
    read: $("own-read"),
    status: $("own-status"),
  };
  const recorder = new Recorder();
  let asked = null; // {sampleId, consentId, phrase, expiresAt}
  let ticking = null;

  async function ask(sampleId) {
    if (asked && asked.sampleId === sampleId) return;
    ui.status.textContent = "Making your phrase…";
    ui.step.hidden = false;
    let made;
    try {
      made = await deps.api(`/api/v1/voice-samples/${sampleId}/reading`, { method: "POST" });
    } catch (error) {
      ui.status.textContent = "";
      deps.failed(error, ui.read, { retry: () => ask(sampleId) });
      return;
    }
    asked = { sampleId, ...made };
    ui.phrase.textContent = made.phrase;
    const until = new Date(made.expiresAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    ui.expires.textContent = `Read it before ${until}.`;
    ui.status.textContent = "Press Start reading, read the phrase aloud, then press Stop reading.";
  }

  function hide() {
    asked = null;
    ui.step.hidden = true;
    ui.status.textContent = "";
  }

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

  async function send(file) {
    const mine = asked;
    if (!mine) return;
    ui.status.textContent = "Listening to your reading…";
    const form = new FormData();
    form.append("file", file, file.name);
    let verdict;
    try {
      verdict = await deps.api(`/api/v1/consents/${mine.consentId}/recording`, { method: "POST", form });
    } catch (error) {
      ui.status.textContent = "";
      if (error instanceof ApiError && error.code === "consent_expired") {
        asked = null;
        deps.sayBeside(ui.read, "The phrase's time ran out: here is a new one.");
        return ask(mine.sampleId);
      }
      deps.failed(error, ui.read, { retry: () => send(file) });
      return;
    }
    if (verdict.status === "rejected") {
      ui.status.textContent = "Press Start reading and read the phrase again.";
      deps.sayBeside(ui.read, rejectionWords(verdict.reason));
      return;
    }
    // Heard: the sample's own status says what came of it.
    ui.status.textContent = "Heard. Checking it against your sample…";
  }

  return { ask, hide };
}
