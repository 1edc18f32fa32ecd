// Requests to voicegate, and its errors turned into sentences a person can act on.

/** A failed request: `message` is what the page shows; `status` 0 means the server was not reached. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = null, retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), or null. */
export function retryAfterSeconds(header) {
  if (!header) return null;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const when = Date.parse(header);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

/** The sentence for an error answer: `problem` is its problem+json body (or null). */
export function describe(status, problem, retryAfter) {
  const detail = problem && typeof problem.detail === "string" ? problem.detail : "";
  const code = problem && problem.code;
  if (status === 503) {
    const wait = retryAfter ?? 5;
    return `voicegate is unavailable right now; try again in ${wait} s.`;
  }
  if (status === 413) return `That file is too large. ${detail}`.trim();
  if (status === 415) {
    return "That file is not audio voicegate can read. Use WAV, MP3, FLAC, OGG, WebM or M4A.";
  }
  if (code === "consent_required") return "Tick the consent box first: no sample is stored without it.";
  if (status === 401) return "Your session has expired. Sign in again.";
  if (status === 404) return detail || "It is gone: it was deleted, or it belongs to someone else.";
  if (status === 429) return `Too many requests; try again in ${retryAfter ?? 10} s.`;
  if (status >= 500) return "voicegate failed to answer. Try again; if it keeps failing, check its log.";
  return detail || `The request failed (HTTP ${status}).`;
}

/**
 * `fetch` with the session's bearer token; the JSON body, or null for 204.
 * Throws ApiError with a sentence for every failure, including an unreachable server.
 */
export async function request(path, { method = "GET", token = null, json, form, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError("voicegate cannot be reached. Check that it is running, then try again.");
  }
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const retryAfter = retryAfterSeconds(response.headers.get("Retry-After"));
    throw new ApiError(describe(response.status, body, retryAfter), {
      status: response.status,
      code: body && body.code,
      retryAfter,
    });
  }
  return body;
}
