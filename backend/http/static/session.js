// Who the page acts for. Embedded: a dev session from this server (loopback only). With Supabase: a
// session from Supabase Auth's email magic link, called over its REST API (no client library to load).

import { ApiError, request } from "./api.js";

const STORE = "voicegate.session";
// Renew a little before expiry, so a request never leaves with a token that dies on the way.
const EARLY_MS = 60_000;

export class Session {
  constructor(config) {
    this.config = config;
    this.current = null;
  }

  get token() {
    return this.current ? this.current.accessToken : null;
  }

  get email() {
    return this.current ? this.current.email : null;
  }

  /** Sign in without asking where possible; null when the user has to ask for a sign-in link. */
  async start() {
    if (this.config.mode === "embedded") return this.devSession();
    const redirected = this.fromRedirect();
    if (redirected) return redirected;
    const stored = this.load();
    if (stored && stored.expiresAt - EARLY_MS > Date.now()) return (this.current = stored);
    if (stored && stored.refreshToken) return this.refresh(stored.refreshToken).catch(() => null);
    return null;
  }

  /** A token that is good for the next request, renewing the session when it is about to expire. */
  async freshToken() {
    if (this.current && this.current.expiresAt - EARLY_MS <= Date.now()) await this.renew();
    return this.token;
  }

  /** A new session after a 401, or null when only signing in again helps. */
  async renew() {
    if (this.config.mode === "embedded") return this.devSession();
    if (this.current && this.current.refreshToken) return this.refresh(this.current.refreshToken).catch(() => null);
    return null;
  }

  async devSession() {
    let answer;
    try {
      answer = await request("/dev/session", { method: "POST" });
    } catch (error) {
      if (error.status === 404) {
        throw new ApiError(
          "The local sign-in answers only on this machine: open this page at http://127.0.0.1 or http://localhost.",
          { status: 404 },
        );
      }
      throw error;
    }
    this.current = {
      accessToken: answer.accessToken,
      expiresAt: Date.parse(answer.expiresAt),
      email: answer.user.email,
      refreshToken: null,
    };
    return this.current;
  }

  /** The session Supabase Auth put in the URL fragment after the magic link, taken out of the URL. */
  fromRedirect() {
    const fragment = new URLSearchParams(window.location.hash.slice(1));
    if (!fragment.has("access_token") && !fragment.has("error")) return null;
    history.replaceState(null, "", window.location.pathname + window.location.search);
    if (fragment.has("error")) {
      const why = fragment.get("error_description") || fragment.get("error");
      throw new ApiError(`Sign-in failed: ${why}. Ask for a new link.`);
    }
    const expiresAt = fragment.has("expires_at")
      ? Number(fragment.get("expires_at")) * 1000
      : Date.now() + Number(fragment.get("expires_in") || 3600) * 1000;
    return this.save({
      accessToken: fragment.get("access_token"),
      refreshToken: fragment.get("refresh_token"),
      expiresAt,
      email: emailOf(fragment.get("access_token")),
    });
  }

  /** Ask Supabase Auth to email a sign-in link that comes back to this page. */
  async sendMagicLink(email) {
    const back = window.location.origin + window.location.pathname;
    await this.auth(`/otp?redirect_to=${encodeURIComponent(back)}`, { email, create_user: true, data: {} });
  }

  async refresh(refreshToken) {
    const answer = await this.auth("/token?grant_type=refresh_token", { refresh_token: refreshToken });
    return this.save({
      accessToken: answer.access_token,
      refreshToken: answer.refresh_token,
      expiresAt: answer.expires_at ? answer.expires_at * 1000 : Date.now() + answer.expires_in * 1000,
      email: (answer.user && answer.user.email) || emailOf(answer.access_token),
    });
  }

  async signOut() {
    const token = this.token;
    this.current = null;
    sessionStorage.removeItem(STORE);
    if (this.config.mode === "supabase" && token) {
      // Best effort: the local copy is gone whatever Supabase answers.
      await this.auth("/logout", null, token).catch(() => null);
    }
  }

  /** A call to the project's Auth REST API with the publishable (anon) key. */
  async auth(path, body, token = null) {
    const { supabaseUrl, anonKey } = this.config;
    if (!supabaseUrl || !anonKey) {
      throw new ApiError(
        "Sign-in is not configured: the server needs SUPABASE_URL and SUPABASE_PUBLISHABLE_KEY (or SUPABASE_ANON_KEY).",
      );
    }
    const headers = { apikey: anonKey, "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(`${supabaseUrl}/auth/v1${path}`, {
        method: "POST",
        headers,
        body: body === null ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError("Supabase Auth cannot be reached; try again.");
    }
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const why = answer.msg || answer.error_description || answer.message || `HTTP ${response.status}`;
      throw new ApiError(`Sign-in failed: ${why}`, { status: response.status });
    }
    return answer;
  }

  save(session) {
    sessionStorage.setItem(STORE, JSON.stringify(session));
    this.current = session;
    return session;
  }

  load() {
    try {
      const stored = JSON.parse(sessionStorage.getItem(STORE) || "null");
      return stored && stored.accessToken ? stored : null;
    } catch {
      return null;
    }
  }
}

/** The email claim of an access token, for the greeting only (the server verifies tokens, not the page). */
function emailOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).email || null;
  } catch {
    return null;
  }
}
