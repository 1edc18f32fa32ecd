// A voice from several samples: a checkbox on each ready sample, "Make a voice from selected"
// (`POST /api/voices`), then the set's report once the voice is ready (`GET /api/voices/{id}/samples`):
// its speech seconds and any warning, such as a sample that sounds like another speaker.
//
// app.js hands in its requests, alert and list refresh through `createSampleSet(deps)`.

const MAX_SAMPLES = 25;
const POLL_MS = 1000;
const WAIT_MS = 120000;

const $ = (id) => document.getElementById(id);

/** deps: { api(path, options), problem(error, retry), failed(error, control, {retry}), clearProblem(),
 * element(tag, text, className), refreshLibrary(), consentId() (the verified spoken consent, or null) } */
export function createSampleSet(deps) {
  const ui = { make: $("make-voice"), status: $("sample-set-status") };
  const chosen = new Set(); // sample ids, kept across list refreshes
  let run = 0;

  function update() {
    const n = chosen.size;
    ui.make.disabled = n === 0 || n > MAX_SAMPLES;
    ui.make.textContent = n ? `Make a voice from selected (${n})` : "Make a voice from selected";
  }

  /** After the samples were listed: a checkbox on each ready one; a choice that is gone is dropped. */
  function listed(samples) {
    const ready = new Set(samples.filter((s) => s.status === "ready").map((s) => s.sampleId));
    for (const id of [...chosen]) if (!ready.has(id)) chosen.delete(id);
    for (const li of document.querySelectorAll("#samples li[data-sample-id]")) {
      const id = li.dataset.sampleId;
      if (!ready.has(id)) continue;
      const box = deps.element("input", "", "choose");
      box.type = "checkbox";
      box.checked = chosen.has(id);
      const name = li.querySelector(".name").textContent;
      box.setAttribute("aria-label", `Choose ${name} for a new voice`);
      box.addEventListener("change", () => {
        if (box.checked) chosen.add(id);
        else chosen.delete(id);
        update();
      });
      li.prepend(box);
    }
    update();
  }

  async function make() {
    const sampleIds = [...document.querySelectorAll("#samples li[data-sample-id]")]
      .map((li) => li.dataset.sampleId)
      .filter((id) => chosen.has(id)); // in the order the list shows them
    deps.clearProblem();
    ui.make.disabled = true;
    let made;
    try {
      // Under a verified spoken consent every sample of the set must be the voice that read it (speaker_mismatch).
      const consentId = deps.consentId();
      made = await deps.api("/api/voices", { method: "POST", json: consentId ? { sampleIds, consentId } : { sampleIds } });
    } catch (error) {
      update();
      // A set refused (a sample not ready, two speakers…) is said beside the button; an outage in the bar.
      deps.failed(error, ui.make, { retry: make });
      return;
    }
    chosen.clear();
    const mine = ++run;
    ui.status.textContent = `Making a voice from ${sampleIds.length} samples (${made.quality.speechS.toFixed(1)} s of speech)…`;
    await deps.refreshLibrary();
    const report = await settled(made.voiceId, mine);
    if (report === null || mine !== run) return;
    await deps.refreshLibrary();
    ui.status.textContent = words(report);
  }

  /** The set once its attempt ended, polled for at most WAIT_MS; null when given up or superseded. */
  async function settled(voiceId, mine) {
    const until = Date.now() + WAIT_MS;
    while (mine === run && Date.now() < until) {
      let report;
      try {
        report = await deps.api(`/api/voices/${voiceId}/samples`);
      } catch (error) {
        deps.problem(error);
        return null;
      }
      if (report.attemptStatus === "ready" || report.attemptStatus === "failed") return report;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    if (mine === run) ui.status.textContent = "The voice is still being made; its status shows in the list.";
    return null;
  }

  function words(report) {
    const q = report.quality;
    if (report.attemptStatus === "failed") return `The voice from ${q.sampleCount} samples could not be made.`;
    const warnings = q.warnings.map((w) => w.message).join(" ");
    return `Voice ready from ${q.sampleCount} samples, ${q.speechS.toFixed(1)} s of speech.${warnings ? ` ${warnings}` : ""}`;
  }

  ui.make.addEventListener("click", make);
  update();
  return { listed };
}
