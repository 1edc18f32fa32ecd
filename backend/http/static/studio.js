// The studio: samples and voices by name (named at upload, renamed later), listening back to a
// sample, hearing a voice's preview, which sample or voice Speak uses, each voice's history of clips (play,
// download WAV or MP3, delete, cancel a running one, a page at a time) and the text's length limit.
//
// app.js owns the session, the requests and the alert; it hands them in through `createStudio(deps)`.

import { ApiError, failure } from "./api.js";

/** The longest text voicegate speaks, in characters (code points, as the API counts them). */
export const MAX_TEXT = 5000;
const CLIPS_PER_PAGE = 10;
const CLIP_POLL_MS = 1000;
const RUNNING = new Set(["queued", "processing"]);

const $ = (id) => document.getElementById(id);

/** Characters as the API counts them: code points, so an emoji is one, not two UTF-16 units. */
export function characters(text) {
  return Array.from(text).length;
}

/** Why `text` cannot be spoken as it is, or null when it can. */
export function textRefusal(text) {
  const over = characters(text) - MAX_TEXT;
  if (over <= 0) return null;
  return `The text is ${characters(text).toLocaleString("en")} characters; voicegate speaks at most ${MAX_TEXT.toLocaleString("en")}. Shorten it by ${over.toLocaleString("en")}.`;
}

/**
 * deps: { api(path, options), token(), problem(error, retry), failed(error, control, {retry, anchor}), clearProblem(),
 *         sayBeside(control, message, anchor),
 *         select(ref, label), target(),
 *         element(tag, text, className), button(text, name, onClick), refreshLibrary(),
 *         confirmDelete(origin, what, erase) }
 */
export function createStudio(deps) {
  const ui = {
    sampleName: $("sample-name"),
    text: $("text"),
    counter: $("text-count"),
    limit: $("text-limit"),
    listenStatus: $("listen-status"),
    history: $("history"),
    historyTitle: $("history-title"),
    clips: $("clips"),
    clipsStatus: $("clips-status"),
    newer: $("clips-newer"),
    older: $("clips-older"),
  };
  // Made when first needed, so the page holds one <audio> (Speak's) until something else is played.
  const players = {};
  const player = (id, after) => {
    if (!players[id]) {
      players[id] = deps.element("audio");
      Object.assign(players[id], { id, controls: true, preload: "none" });
      after.after(players[id]);
    }
    return players[id];
  };
  let samples = []; // the last list, to know which voice a selected sample speaks with
  let voices = []; // likewise: a voice is not renamed to the name another has
  // `notice`: what the user's last action did (deleted, canceled, downloaded). It stands in the status until
  // they open or page the list, so a refresh that reloads the list meanwhile does not wipe it.
  const shown = { voice: null, cursors: [null], next: null, run: 0, timer: null, notice: "" };

  // ---- the text's length: "N / 5000", announced once when it goes over, refused rather than cut ----

  let wasOver = false;
  function countText() {
    const n = characters(ui.text.value);
    const over = n > MAX_TEXT;
    ui.counter.textContent = `${n.toLocaleString("en")} / ${MAX_TEXT.toLocaleString("en")}`;
    ui.counter.classList.toggle("over", over);
    ui.text.setAttribute("aria-invalid", String(over));
    if (over !== wasOver) {
      // Said when the limit is crossed, not at every keystroke: a live region that counts would talk over typing.
      ui.limit.textContent = over ? `Over the ${MAX_TEXT.toLocaleString("en")}-character limit: shorten the text to speak it.` : "";
      wasOver = over;
    }
  }
  ui.text.addEventListener("input", countText);
  countText();

  /** The name typed for the next upload (cleared once it is used), or null. */
  function takeSampleName() {
    const name = ui.sampleName.value.trim();
    ui.sampleName.value = "";
    return name || null;
  }

  // ---- the lists: names, Selected, Listen / Preview, Rename, Clips ----

  /** How buttons name a sample: "sample “Kitchen”", or "sample of <date>" while it has no name. */
  function sampleWords(sample) {
    return sample.name ? `sample “${sample.name}”` : `sample of ${new Date(sample.createdAt).toLocaleString()}`;
  }

  function sampleItem(sample, actions) {
    const shownName = sample.name || `Sample of ${new Date(sample.createdAt).toLocaleString()}`;
    const words = sampleWords(sample);
    const length = sample.quality ? ` · ${sample.quality.durationS.toFixed(1)} s` : "";
    const path = `/api/v1/voice-samples/${sample.sampleId}`;
    const li = row(shownName, `${sample.status}${length}`, [
      deps.button("Listen", `Listen to ${words}`, (event) =>
        listen(`${path}/audio-url`, `the ${words}`, event.currentTarget),
      ),
      deps.button("Rename", `Rename ${words}`, (event) =>
        rename(event.target, sample.name || "", words, path, () => samples.filter((s) => s.sampleId !== sample.sampleId)),
      ),
      ...actions,
    ]);
    li.dataset.sampleId = sample.sampleId;
    return li;
  }

  function voiceItem(voice, actions) {
    const when = new Date(voice.created_at).toLocaleDateString();
    const words = `voice “${voice.name}”`;
    const li = row(voice.name, `${voice.tts_provider || "no provider"} · ${voice.status} · ${when}`, [
      deps.button("Preview", `Preview ${words}`, (event) =>
        listen(`/api/voices/${voice.id}/preview`, `the ${words}`, event.currentTarget),
      ),
      deps.button("Clips", `Clips of ${words}`, () => openHistory(voice)),
      deps.button("Rename", `Rename ${words}`, (event) =>
        rename(event.target, voice.name, words, `/api/voices/${voice.id}`, () => voices.filter((v) => v.id !== voice.id)),
      ),
      ...actions,
    ]);
    li.dataset.voiceId = voice.id;
    if (shown.voice && shown.voice.id === voice.id && shown.voice.name !== voice.name) {
      shown.voice = voice;
      ui.historyTitle.textContent = `Clips of “${voice.name}”`;
    }
    return li;
  }

  /** A list row: the name (its own element, so a rename can stand in for it), what it is, its buttons. */
  function row(name, detail, actions) {
    const li = deps.element("li");
    const what = deps.element("span", "", "what");
    const badge = deps.element("span", "Selected", "badge");
    badge.hidden = true;
    what.append(deps.element("strong", name, "name"), " ", badge, deps.element("span", ` · ${detail}`, "muted"));
    const group = deps.element("span", "", "actions");
    group.append(...actions);
    li.append(what, group);
    return li;
  }

  /** After the lists were drawn: remember the samples and mark what Speak uses. */
  function listed(sampleList) {
    samples = sampleList;
    markSelected();
  }

  /** The voice made from the sample `sampleId` (as last listed), or null. */
  function voiceOf(sampleId) {
    const sample = samples.find((s) => s.sampleId === sampleId);
    return (sample && sample.voiceId) || null;
  }

  /** Mark the sample or voice Speak uses (and, for a sample already cloned, its voice) as Selected. */
  function markSelected() {
    const target = deps.target();
    const sampleId = target && target.ref.sampleId;
    const sample = sampleId && samples.find((s) => s.sampleId === sampleId);
    const voiceId = target && (target.ref.voiceId || (sample && sample.voiceId));
    for (const li of document.querySelectorAll("#samples li[data-sample-id], #voices li[data-voice-id]")) {
      const on = li.dataset.sampleId ? li.dataset.sampleId === sampleId : li.dataset.voiceId === voiceId;
      li.classList.toggle("selected", on);
      li.querySelector(".badge").hidden = !on;
      if (on) li.setAttribute("aria-current", "true");
      else li.removeAttribute("aria-current");
    }
  }

  /** Where a refusal of one of a row's buttons is said: under the row's buttons, inside its item. */
  const inRow = (button) => ({ anchor: button.closest(".actions") || button });

  /** Play what `path` signs (a sample's upload, a voice's preview) in the library's player (`opener` asked). */
  async function listen(path, label, opener) {
    deps.clearProblem();
    let heard;
    try {
      heard = await deps.api(path);
    } catch (error) {
      deps.failed(error, opener, { retry: () => listen(path, label, opener), ...inRow(opener) });
      return;
    }
    if (!heard.audioUrl) {
      ui.listenStatus.textContent = `Nothing to hear of ${label} yet: speak some text with it first.`;
      return;
    }
    const listener = player("listener", ui.listenStatus);
    listener.src = heard.audioUrl;
    ui.listenStatus.textContent = heard.source === "clip" ? `Playing ${label}: its newest clip.` : `Playing ${label}.`;
    listener.play().catch(() => {});
  }

  /**
   * Swap the name for a text box with Save and Cancel; Enter saves, Escape cancels. A blank name, or one that
   * `others()` (the rest of the list it is in) has, is refused beside the box.
   */
  function rename(opener, current, words, path, others) {
    const li = opener.closest("li");
    const nameNode = li.querySelector(".name");
    if (li.querySelector("form")) return;
    const form = deps.element("form", "", "rename");
    const input = deps.element("input");
    input.type = "text";
    input.value = current;
    input.maxLength = 200;
    input.required = true;
    input.setAttribute("aria-label", `New name for the ${words}`);
    const save = deps.element("button", "Save", "small");
    save.type = "submit";
    const cancel = deps.button("Cancel", `Cancel renaming the ${words}`, () => close());
    form.append(input, save, cancel);
    nameNode.hidden = true;
    nameNode.after(form);
    input.focus();
    input.select();
    const close = () => {
      deps.clearProblem();
      form.remove();
      nameNode.hidden = false;
      opener.focus();
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") close();
    });
    // A refusal of the last try stands only until the name is changed.
    input.addEventListener("input", () => deps.clearProblem());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      deps.clearProblem();
      const name = input.value.trim();
      const kind = words.startsWith("voice") ? "voice" : "sample";
      const refusal = !name
        ? "A name cannot be blank."
        : others().some((other) => (other.name || "").trim().toLowerCase() === name.toLowerCase())
          ? `You have a ${kind} named “${name}” already: choose another name.`
          : null;
      if (refusal) {
        deps.sayBeside(input, refusal, li.querySelector(".actions"));
        input.focus();
        return;
      }
      save.disabled = true;
      try {
        await deps.api(path, { method: "PATCH", json: { name } });
      } catch (error) {
        save.disabled = false;
        // A name taken meanwhile (another tab, an app: 409 voice_name_taken) is said beside the name, in its words.
        deps.failed(error, input, { retry: () => form.requestSubmit(), anchor: li.querySelector(".actions") });
        input.focus();
        return;
      }
      nameNode.textContent = name;
      form.remove();
      nameNode.hidden = false;
      const { sampleId, voiceId } = li.dataset;
      await deps.refreshLibrary();
      // The list was drawn again: focus the Rename button of the renamed row.
      const key = sampleId ? `#samples li[data-sample-id="${sampleId}"]` : `#voices li[data-voice-id="${voiceId}"]`;
      const again = [...document.querySelectorAll(`${key} button`)].find((b) => b.textContent === "Rename");
      (again || opener).focus();
    });
  }

  // ---- a voice's clips, newest first, a page at a time ----

  function openHistory(voice) {
    shown.voice = voice;
    shown.cursors = [null];
    shown.notice = "";
    ui.history.hidden = false;
    ui.historyTitle.textContent = `Clips of “${voice.name}”`;
    loadClips().then(() => ui.historyTitle.focus());
  }

  async function loadClips() {
    if (!shown.voice) return;
    const mine = ++shown.run;
    clearTimeout(shown.timer);
    const cursor = shown.cursors[shown.cursors.length - 1];
    const query = new URLSearchParams({ limit: String(CLIPS_PER_PAGE) });
    if (cursor) query.set("cursor", cursor);
    let page;
    try {
      page = await deps.api(`/api/voices/${shown.voice.id}/clips?${query}`);
    } catch (error) {
      if (mine !== shown.run) return;
      if (error.status === 404) return closeHistory();
      deps.problem(error, loadClips);
      return;
    }
    if (mine !== shown.run) return;
    shown.next = page.nextCursor;
    ui.clips.replaceChildren(...page.clips.map(clipItem));
    const number = shown.cursors.length;
    ui.clipsStatus.textContent =
      shown.notice ||
      (page.clips.length === 0 && number === 1 ? "No clips yet: type some text above and press Speak." : `Page ${number}.`);
    ui.newer.disabled = number === 1;
    ui.older.disabled = !page.nextCursor;
    if (page.clips.some((clip) => RUNNING.has(clip.status))) shown.timer = setTimeout(loadClips, CLIP_POLL_MS);
  }

  function closeHistory() {
    shown.voice = null;
    clearTimeout(shown.timer);
    ui.history.hidden = true;
  }

  ui.older.addEventListener("click", () => {
    shown.cursors.push(shown.next);
    shown.notice = "";
    loadClips();
  });
  ui.newer.addEventListener("click", () => {
    shown.cursors.pop();
    shown.notice = "";
    loadClips();
  });

  function clipItem(clip) {
    const when = new Date(clip.createdAt).toLocaleString();
    const short = clip.text.length > 90 ? `${clip.text.slice(0, 88)}…` : clip.text;
    // Two clips made in the same second differ by their text: each control's name must be its own.
    const name = `clip “${short}” of ${when}`;
    const li = deps.element("li");
    li.dataset.jobId = clip.jobId;
    const what = deps.element("span", "", "what");
    const quote = deps.element("span", `“${short}”`, "clip-text");
    quote.title = clip.text;
    const length = clip.durationMs ? ` · ${(clip.durationMs / 1000).toFixed(1)} s` : "";
    // Its reason as the server keeps it for people; never the bare code when it kept none.
    const why = clip.status === "failed" ? ` (${(clip.error && clip.error.message) || "no reason was kept"})` : "";
    what.append(quote, deps.element("span", ` ${when}${length} · ${clip.status}${why}`, "muted small"));
    const actions = [];
    if (clip.status === "succeeded") {
      actions.push(
        deps.button("Play", `Play ${name}`, (event) => play(clip, event.currentTarget)),
        deps.button("WAV", `Download ${name} as WAV`, (event) => download(clip, "wav", event.currentTarget)),
        deps.button("MP3", `Download ${name} as MP3`, (event) => download(clip, "mp3", event.currentTarget)),
      );
    }
    if (RUNNING.has(clip.status)) {
      actions.push(deps.button("Cancel", `Cancel ${name}`, (event) => cancel(clip, event.currentTarget)));
    } else {
      // The page's one confirmation: Cancel has the focus, Escape cancels; after the delete, the next clip has it.
      const erase = (origin) => removeClip(clip, origin);
      actions.push(deps.button("Delete", `Delete ${name}`, (event) => deps.confirmDelete(event.currentTarget, `the ${name}`, erase)));
    }
    const group = deps.element("span", "", "actions");
    group.append(...actions);
    li.append(what, group);
    return li;
  }

  async function play(clip, opener) {
    deps.clearProblem();
    let result;
    try {
      result = await deps.api(`/api/v1/clone/${clip.jobId}/result`);
    } catch (error) {
      deps.failed(error, opener, { retry: () => play(clip, opener), ...inRow(opener) });
      return;
    }
    const clipPlayer = player("clip-player", ui.clips.nextElementSibling);
    clipPlayer.src = result.audioUrl;
    clipPlayer.dataset.jobId = clip.jobId;
    clipPlayer.play().catch(() => {});
  }

  /** The clip's file through the API (it needs the bearer token), saved under its own name (`opener` asked). */
  async function download(clip, format, opener) {
    deps.clearProblem();
    ui.clipsStatus.textContent = `Preparing the ${format.toUpperCase()}…`;
    let response;
    try {
      response = await fetch(`/api/v1/clone/${clip.jobId}/audio?format=${format}`, {
        headers: { Authorization: `Bearer ${await deps.token()}` },
      });
    } catch {
      response = null;
    }
    if (!response || !response.ok) {
      ui.clipsStatus.textContent = "";
      const error = response
        ? failure(response, await response.json().catch(() => null))
        : new ApiError("The download failed: voicegate cannot be reached. Check that it is running, then try again.");
      deps.failed(error, opener, { retry: () => download(clip, format, opener), ...inRow(opener) });
      return;
    }
    const url = URL.createObjectURL(await response.blob());
    const link = deps.element("a");
    link.href = url;
    link.download = `voicegate-${clip.jobId.slice(0, 8)}.${format}`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    shown.notice = `Downloaded ${link.download}.`;
    ui.clipsStatus.textContent = shown.notice;
  }

  async function cancel(clip, opener) {
    deps.clearProblem();
    try {
      await deps.api(`/api/v1/clone/${clip.jobId}/cancel`, { method: "POST" });
    } catch (error) {
      // Ended meanwhile (409): the list says how. Anything else did not cancel it: said beside Cancel, list as it was.
      if (error.status !== 409) {
        deps.failed(error, opener, { retry: () => cancel(clip, opener), ...inRow(opener) });
        return;
      }
    }
    shown.notice = "Canceled: nothing of it is kept.";
    await loadClips();
    ui.historyTitle.focus();
  }

  /** Delete the clip (asked first by confirmDelete, from `origin`) and show the list without it; whether it went. */
  async function removeClip(clip, origin) {
    deps.clearProblem();
    try {
      await deps.api(`/api/v1/clone/${clip.jobId}`, { method: "DELETE" });
    } catch (error) {
      if (error.status !== 404) {
        deps.failed(error, origin, { retry: () => removeClip(clip, origin), ...inRow(origin) });
        return false;
      }
    }
    const clipPlayer = players["clip-player"];
    if (clipPlayer && clipPlayer.dataset.jobId === clip.jobId) {
      clipPlayer.remove();
      delete players["clip-player"];
    }
    shown.notice = "Clip deleted.";
    await loadClips();
    return true;
  }

  /** After the voices were listed: a voice whose clips are shown that is gone closes them; else they refresh. */
  function voicesListed(list) {
    voices = list;
    if (!shown.voice) return;
    if (voices.some((voice) => voice.id === shown.voice.id)) loadClips();
    else closeHistory();
  }

  return { takeSampleName, sampleItem, voiceItem, listed, voicesListed, markSelected, voiceOf };
}
