// Requests to voicegate, and its errors turned into sentences a person can act on.

import { durationWords, launchBlockedWords } from "./words.js";

/** A failed request: `message` is what the page shows; `status` 0 means the server was not reached. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = null, retryAfter = null, problem = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    // The problem+json body, for the fields some refusals carry (e.g. `blockingReasons` of launch_blocked).
    this.problem = problem;
  }
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), or null. */
export function retryAfterSeconds(header) {
  if (!header) return null;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const when = Date.parse(header);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

// Refusals that waiting a few seconds cannot cure: the quota (it resets hours away), a cap only the user's own act
// frees (a draft finalized or deleted). A 429 whose Retry-After is over a minute is one too.
const LASTING = new Set(["quota_exceeded", "draft_voices_limited"]);
const LASTING_AFTER_S = 60;

/** Whether `error` is a refusal no retry soon will change: said in words, with when it ends, and not retried. */
export function lasting(error) {
  if (!(error instanceof ApiError)) return false;
  return LASTING.has(error.code) || (error.status === 429 && (error.retryAfter ?? 0) > LASTING_AFTER_S);
}

/**
 * Whether the same request may succeed later, unchanged: the server was unreachable, busy or down. Any
 * other refusal (bad input, not audio, too large, no consent, gone, a spent quota) stands until the user changes
 * something, or for longer than anyone waits at a page, so the page offers no "Try again" for it.
 */
export function passing(error) {
  if (!(error instanceof ApiError) || lasting(error)) return false;
  const { status, code } = error;
  return status === 0 || status === 408 || status === 429 || status >= 500 || code === "idempotency_key_in_flight";
}

/**
 * How long the page waits out a busy or unavailable server by itself, in seconds: the first pause is
 * what `Retry-After` asks for, each repeat `growth` times the one before, and every pause up to
 * `jitter` more at random (so pages that met the same outage, the first pause included, do not come
 * back in step), each at most `maxPause`, all together at most `total`. Past that, the error is shown
 * with "Try again".
 */
export const PATIENCE = Object.freeze({ first: 2, growth: 1.5, jitter: 0.25, maxPause: 10, total: 60 });

/** Whether the server asked to be asked again later (503, 429, or the same Idempotency-Key still running). */
function asksToWait(error) {
  return (
    error instanceof ApiError &&
    !lasting(error) &&
    (error.status === 503 || error.status === 429 || error.code === "idempotency_key_in_flight")
  );
}

/** The pause in seconds before repeat number `repeat` (0 for the first), as PATIENCE describes. */
export function pauseSeconds(retryAfter, repeat, random = Math.random) {
  const asked = Math.min(Math.max(retryAfter ?? PATIENCE.first, 1), PATIENCE.maxPause);
  const grown = asked * PATIENCE.growth ** repeat * (1 + PATIENCE.jitter * random());
  return Math.min(grown, PATIENCE.maxPause);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `send()`, sent again after a pause for as long as the server asks to wait and PATIENCE lasts; its
 * answer, or the error that ended it. `onWait(seconds, error)` is told before each pause and
 * `onWait(0, null)` once the waiting is over, either way. Only for a request that is safe to repeat:
 * a read, a DELETE, or a POST with an Idempotency-Key (see `repeatable`).
 */
export async function patiently(send, onWait = () => {}) {
  let waited = 0;
  try {
    for (let repeat = 0; ; repeat += 1) {
      try {
        return await send();
      } catch (error) {
        if (!asksToWait(error)) throw error;
        const pause = pauseSeconds(error.retryAfter, repeat);
        if (waited + pause > PATIENCE.total) throw error;
        onWait(pause, error);
        await sleep(pause * 1000);
        waited += pause;
      }
    }
  } finally {
    if (waited > 0) onWait(0, null);
  }
}

/** Whether a request may be sent twice without doing its work twice. */
export function repeatable({ method = "GET", headers = {} } = {}) {
  return ["GET", "HEAD", "PUT", "DELETE"].includes(method) || Boolean(headers["Idempotency-Key"]);
}

/** A fresh Idempotency-Key: 128 random bits, hex (crypto.randomUUID needs a secure context; this does not). */
export function newIdempotencyKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The calm words for a pause `patiently` takes: nothing failed yet, the page carries on by itself. The
 * seconds said are the pause's, rounded: its jitter is a fraction of a second no one needs to read. */
export function waitingWords(error, seconds) {
  const n = Math.max(1, Math.round(seconds));
  if (error.code === "backlog_full") {
    return `voicegate has more samples to check than it takes on right now; sending yours again by itself in ${n} s.`;
  }
  if (error.status === 429) return `voicegate is busy; retrying by itself in ${n} s.`;
  if (error.status === 409) return `voicegate is still on your last request; checking again in ${n} s.`;
  return `voicegate is unavailable right now; retrying by itself in ${n} s.`;
}

/** The sentence for an error answer: `problem` is its problem+json body (or null). */
export function describe(status, problem, retryAfter) {
  const detail = problem && typeof problem.detail === "string" ? problem.detail : "";
  const code = problem && problem.code;
  if (code === "backlog_full") {
    return `voicegate has more samples to check than it takes on right now, so yours was not taken: try again in ${retryAfter ?? 10} s.`;
  }
  if (status === 503) {
    const wait = retryAfter ?? 5;
    return `voicegate is unavailable right now; try again in ${wait} s.`;
  }
  if (status === 413) return `That file is too large. ${detail}`.trim();
  if (status === 415) {
    return "That file is not audio voicegate can read. Use WAV, MP3, FLAC, OGG, WebM or M4A.";
  }
  if (code === "consent_required") return "Tick the consent box first: no sample is stored without it.";
  // Spoken consent: the phrase read aloud is what a sample is stored under.
  if (code === "consent_recording_required") {
    return "voicegate takes samples here only under a spoken consent: read your consent phrase first, then give the sample again.";
  }
  if (code === "consent_not_verified") {
    return "Your consent phrase has not been verified yet: read it aloud first, then give the sample again.";
  }
  if (code === "consent_expired") {
    return "Your consent can no longer be used (its phrase was not read in time, or its recording was deleted): get a new phrase and read it.";
  }
  // Its detail names the reasons by code ("…: no_voice."): the page says what each asks of the user.
  if (code === "launch_blocked") return launchBlockedWords(problem.blockingReasons);
  if (status === 401) return "Your session has expired. Sign in again.";
  if (status === 404) return detail || "It is gone: it was deleted, or it belongs to someone else.";
  // A quota, a cap: the server's own sentence says what and until when (its times as a person says them).
  if (status === 429 && (LASTING.has(code) || (retryAfter ?? 0) > LASTING_AFTER_S)) {
    return detail || `Not now; try again in ${durationWords(retryAfter ?? 0)}.`;
  }
  if (status === 429) return `Too many requests; try again in ${retryAfter ?? 10} s.`;
  if (status >= 500) return "voicegate failed to answer. Try again; if it keeps failing, check its log.";
  return detail || `The request failed (HTTP ${status}).`;
}

/**
 * `fetch` with the session's bearer token; the JSON body, or null for 204.
 * Throws ApiError with a sentence for every failure, including an unreachable server.
 */
export async function request(path, options = {}) {
  const response = await send(path, options);
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) throw failure(response, body);
  return body;
}

/** Like `request`, but the answer's body is left unread, to be read as it streams (e.g. audio). */
export async function requestStream(path, options = {}) {
  const response = await send(path, { ...options, accept: "*/*" });
  if (!response.ok) throw failure(response, await response.json().catch(() => null));
  return response;
}

async function send(path, { method = "GET", token = null, json, form, headers = {}, accept = "application/json" } = {}) {
  const init = { method, headers: { Accept: accept, ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError("voicegate cannot be reached. Check that it is running, then try again.");
  }
}

/** The ApiError for an error answer whose problem+json body (or null) is `body`. */
export function failure(response, body) {
  const retryAfter = retryAfterSeconds(response.headers.get("Retry-After"));
  return new ApiError(describe(response.status, body, retryAfter), {
    status: response.status,
    code: body && body.code,
    retryAfter,
    problem: body,
  });
}
