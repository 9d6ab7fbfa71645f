// latch.js: a small client of latch's JSON API, as one ES module with no dependencies.
//
//   import { Latch } from "/static/latch.js";
//   const latch = new Latch();
//   const result = await latch.signIn({ login: "alice", password: "…" });
//   if (result.mfaRequired) await latch.secondFactor({ code: "123456" });
//   const user = await latch.user();          // null when signed out
//   await latch.signOut();
//
//   // Passkeys (WebAuthn), where the browser has them:
//   if (Latch.passkeysSupported()) {
//     await latch.addPasskey({ name: "Laptop", current_password: "…" });
//     const user = await latch.signInWithPasskey();
//   }
//
// It fetches the CSRF token once and sends it with every request that changes something,
// takes the new token the server sends when it rotates the session (sign-in, sign-up, second
// step, password change), fetches a fresh one once when a request is refused for CSRF, and
// turns every error answer into a `LatchError` with latch's `code`, `message` and `fields`.
// Cookies stay HttpOnly: the module never sees the session, only the CSRF token.

/** An error answer of the API: `status` (HTTP), `code` (e.g. `invalid_credentials`),
 *  `message` (for people) and `fields` (field name → messages, for `validation_failed`). */
export class LatchError extends Error {
  constructor(status, code, message, fields, retryAfter) {
    super(message);
    this.name = "LatchError";
    this.status = status;
    this.code = code;
    this.fields = fields || {};
    this.retryAfter = retryAfter;
  }
}

/** Where latch's pages are: the path this module was served from, minus `/static/latch.js`,
 *  so the client works when latch is mounted under a prefix. */
function defaultBase() {
  try {
    const path = new URL(import.meta.url).pathname;
    const at = path.lastIndexOf("/static/");
    return at >= 0 ? path.slice(0, at) : "";
  } catch {
    return "";
  }
}


// ---- WebAuthn's JSON forms (binary fields as base64url without padding) ----

function fromBase64url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "===".slice((base64.length + 3) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
}

function toBase64url(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function descriptors(list) {
  return (list || []).map((d) => ({ ...d, id: fromBase64url(d.id) }));
}

/** `PublicKeyCredentialCreationOptionsJSON` → the options `navigator.credentials.create`
 *  takes (the browser's own parser where it has one). */
function creationOptions(json) {
  if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
    return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: fromBase64url(json.challenge),
    user: { ...json.user, id: fromBase64url(json.user.id) },
    excludeCredentials: descriptors(json.excludeCredentials),
  };
}

/** `PublicKeyCredentialRequestOptionsJSON` → the options `navigator.credentials.get` takes. */
function requestOptions(json) {
  if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
    return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: fromBase64url(json.challenge),
    allowCredentials: descriptors(json.allowCredentials),
  };
}

/** A `PublicKeyCredential` → its JSON form (`toJSON()` where the browser has it). */
function credentialJSON(credential) {
  if (typeof credential.toJSON === "function") return credential.toJSON();
  const r = credential.response;
  const response = { clientDataJSON: toBase64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toBase64url(r.attestationObject);
    if (typeof r.getTransports === "function") response.transports = r.getTransports();
  } else {
    response.authenticatorData = toBase64url(r.authenticatorData);
    response.signature = toBase64url(r.signature);
    if (r.userHandle) response.userHandle = toBase64url(r.userHandle);
  }
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    response,
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

/** A cancelled or refused browser prompt as a `LatchError` (`passkey_cancelled`). */
function browserRefusal(e) {
  if (e instanceof LatchError) return e;
  if (e && e.name === "AbortError") return e;
  const message =
    e && e.name === "NotAllowedError"
      ? "The passkey prompt was closed or timed out."
      : e && e.name === "InvalidStateError"
        ? "This device already holds a passkey for this account."
        : "The browser could not use a passkey" + (e && e.message ? ": " + e.message : ".");
  return new LatchError(0, "passkey_cancelled", message);
}

export class Latch {
  /** `base`: the path prefix of latch (default: found from this module's own URL). */
  constructor({ base = defaultBase(), fetch: fetchImpl } = {}) {
    this.base = base.replace(/\/$/, "");
    this.csrf = null;
    this.fetch = fetchImpl || globalThis.fetch.bind(globalThis);
  }

  /** The CSRF token of this browser's session (fetched once; starts an anonymous session). */
  async csrfToken() {
    if (!this.csrf) {
      const body = await this.request("GET", "/api/auth/csrf");
      this.csrf = body.csrf_token;
    }
    return this.csrf;
  }

  /** Calls `path` (under the base) and returns the parsed JSON body (or `null` for 204).
   *  Throws `LatchError` for an error answer. */
  async request(method, path, body, { retried = false } = {}) {
    const headers = { Accept: "application/json" };
    const unsafe = method !== "GET" && method !== "HEAD";
    if (unsafe) headers["X-CSRF-Token"] = await this.csrfToken();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await this.fetch(this.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    const rotated = response.headers.get("X-CSRF-Token");
    if (rotated) this.csrf = rotated;
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (response.ok) return data;
    const error = (data && data.error) || {};
    if (response.status === 403 && error.code === "csrf_failed" && unsafe && !retried) {
      // The session changed under us (expired, or rotated in another tab): new token, once.
      this.csrf = null;
      return this.request(method, path, body, { retried: true });
    }
    throw new LatchError(
      response.status,
      error.code || "http_" + response.status,
      error.message || response.statusText || "The request failed.",
      error.fields,
      Number(response.headers.get("Retry-After")) || undefined,
    );
  }

  /** The signed-in user, or `null`. */
  async user() {
    try {
      return (await this.request("GET", "/api/auth/verify_auth")).user;
    } catch (e) {
      if (e instanceof LatchError && e.status === 401) return null;
      throw e;
    }
  }

  /** `{ user }` when signed in, or `{ mfaRequired: true, methods }` when the account has a
   *  second factor: then call `secondFactor`. */
  async signIn({ login, password, remember_me = false }) {
    const body = await this.request("POST", "/api/auth/login", { login, password, remember_me });
    if (body && body.mfa_required) return { mfaRequired: true, methods: body.methods || [] };
    return { user: body.user };
  }

  /** The second step of a sign-in: `{ code }` (TOTP) or `{ recovery_code }`. */
  async secondFactor({ code, recovery_code }) {
    const body = recovery_code ? { recovery_code } : { code };
    return (await this.request("POST", "/api/auth/mfa", body)).user;
  }

  /** Creates an account and signs it in. */
  async signUp({ username, email, password, first_name, last_name }) {
    const body = { username, email, password };
    if (first_name) body.first_name = first_name;
    if (last_name) body.last_name = last_name;
    return (await this.request("POST", "/api/auth/signup", body)).user;
  }

  /** Ends this session (the next request starts an anonymous one). */
  async signOut() {
    await this.request("POST", "/api/auth/logout");
    this.csrf = null;
  }

  /** The second factor's state: `{ totp, recovery_codes_left, passkeys }`. */
  async mfaStatus() {
    return this.request("GET", "/api/auth/mfa");
  }

  /** This user's live sessions. */
  async sessions() {
    return (await this.request("GET", "/api/auth/sessions")).sessions;
  }

  /** Changes the password; the server re-issues this session and ends the others. */
  async changePassword({ current_password, new_password, keep_api_tokens = false }) {
    await this.request("POST", "/api/auth/password/change", {
      current_password,
      new_password,
      keep_api_tokens,
    });
  }

  /** Mails a reset link when the address has an account (the answer never says). */
  async forgotPassword({ email }) {
    await this.request("POST", "/api/auth/password/forgot", { email });
  }

  /** Whether this browser can use passkeys at all. */
  static passkeysSupported() {
    return typeof window !== "undefined" && typeof window.PublicKeyCredential === "function" &&
      !!navigator.credentials;
  }

  /** Whether the browser offers passkeys in the username field's autofill. */
  static async passkeyAutofillSupported() {
    if (!Latch.passkeysSupported()) return false;
    const check = PublicKeyCredential.isConditionalMediationAvailable;
    return typeof check === "function" ? await check.call(PublicKeyCredential) : false;
  }

  /** Adds a passkey to the signed-in account: asks the browser to create one and registers
   *  it. `current_password` may be left out within 5 minutes of a passkey sign-in. Returns
   *  `{ id, name, created_at, last_used_at }`. */
  async addPasskey({ name, current_password } = {}) {
    const body = current_password ? { current_password } : {};
    const { publicKey } = await this.request("POST", "/api/auth/passkeys/register/start", body);
    let credential;
    try {
      credential = await navigator.credentials.create({ publicKey: creationOptions(publicKey) });
    } catch (e) {
      throw browserRefusal(e);
    }
    const finish = { name, credential: credentialJSON(credential) };
    return (await this.request("POST", "/api/auth/passkeys/register/finish", finish)).passkey;
  }

  /** Signs in with a passkey (no username: the browser offers the passkeys it holds for this
   *  site). In a sign-in waiting for its second factor, a passkey of that user completes
   *  it. `mediation: "conditional"` waits for the user to pick a passkey from the username
   *  field's autofill; `signal` (an `AbortSignal`) cancels the wait. Returns the user. */
  async signInWithPasskey({ mediation, signal, remember_me = false } = {}) {
    const { publicKey } = await this.request("POST", "/api/auth/passkeys/login/start", {});
    let credential;
    try {
      const options = { publicKey: requestOptions(publicKey) };
      if (mediation) options.mediation = mediation;
      if (signal) options.signal = signal;
      credential = await navigator.credentials.get(options);
    } catch (e) {
      throw browserRefusal(e);
    }
    const body = { credential: credentialJSON(credential), remember_me };
    return (await this.request("POST", "/api/auth/passkeys/login/finish", body)).user;
  }

  /** The signed-in user's passkeys. */
  async passkeys() {
    return (await this.request("GET", "/api/auth/passkeys")).passkeys;
  }

  /** Renames one of the user's passkeys. */
  async renamePasskey(id, name) {
    return (await this.request("PATCH", `/api/auth/passkeys/${encodeURIComponent(id)}`, { name }))
      .passkey;
  }

  /** Removes one of the user's passkeys. */
  async removePasskey(id) {
    await this.request("DELETE", `/api/auth/passkeys/${encodeURIComponent(id)}`);
  }
}
