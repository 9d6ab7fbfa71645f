// The /app page: a small single-page client of the JSON API built on latch.js. No framework,
// no inline script (the CSP allows only 'self'); every error is shown at its field or in the
// alert box.
import { Latch, LatchError } from "./latch.js";

const latch = new Latch();
const $ = (id) => document.getElementById(id);
// Passkeys need the browser's support and the server's (a public_url with a domain name).
const passkeys = Latch.passkeysSupported() && $("app").hasAttribute("data-passkeys-on");

function showError(message) {
  const box = $("app-error");
  box.textContent = message || "";
  box.hidden = !message;
}

/** Puts each field's first message under its input (`prefix` + field name ids). */
function showFieldErrors(form, prefix, error) {
  for (const small of form.querySelectorAll(".field-error")) small.textContent = "";
  for (const input of form.querySelectorAll("input")) input.removeAttribute("aria-invalid");
  if (!(error instanceof LatchError)) {
    showError("latch could not be reached. Try again.");
    return;
  }
  const fields = error.fields || {};
  let placed = false;
  for (const [name, messages] of Object.entries(fields)) {
    const target = $(`${prefix}-${name}-error`);
    const input = $(`${prefix}-${name}`);
    if (target && messages.length) {
      target.textContent = messages[0];
      if (input) input.setAttribute("aria-invalid", "true");
      placed = true;
    }
  }
  showError(placed ? "" : error.message);
}

async function render() {
  const user = await latch.user();
  $("signed-in").hidden = !user;
  $("signed-out").hidden = !!user;
  if (user) {
    $("me-username").textContent = user.username;
    $("me-email").textContent = user.email;
    $("me-roles").textContent = user.roles.length ? user.roles.join(", ") : "none";
    $("me-mfa").textContent = user.mfa_enabled ? "on" : "off";
  } else {
    $("sign-in-form").hidden = false;
    $("second-step-form").hidden = true;
  }
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    const result = await latch.signIn({
      login: form.login.value,
      password: form.password.value,
      remember_me: form.remember_me.checked,
    });
    form.password.value = "";
    showFieldErrors(form, "in", new LatchError(200, "", "", {}));
    if (result.mfaRequired) {
      form.hidden = true;
      $("second-step-form").hidden = false;
      // A passkey as the only second factor (a role that requires one, no TOTP): no code.
      const codes = result.methods.includes("totp");
      $("mfa-code-part").hidden = !codes;
      $("mfa-code").disabled = !codes;
      $("mfa-passkey-only").hidden = codes;
      $("mfa-passkey").hidden = !(passkeys && result.methods.includes("passkey"));
      if (codes) $("mfa-code").focus();
      return;
    }
    await render();
  } catch (error) {
    showFieldErrors(form, "in", error);
  }
});

$("second-step-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const typed = form.code.value.trim();
  // Six digits (spaces and dashes allowed) is a TOTP code; anything longer a recovery code.
  const digits = typed.replace(/[\s-]/g, "");
  const attempt = /^\d{6}$/.test(digits) ? { code: typed } : { recovery_code: typed };
  try {
    await latch.secondFactor(attempt);
    form.code.value = "";
    showFieldErrors(form, "mfa", new LatchError(200, "", "", {}));
    await render();
  } catch (error) {
    if (error instanceof LatchError && error.code === "mfa_not_pending") {
      showError("The sign-in took too long. Sign in again.");
      await render();
      return;
    }
    if (error instanceof LatchError && error.code === "invalid_code") {
      $("mfa-code-error").textContent = error.message;
      $("mfa-code").setAttribute("aria-invalid", "true");
      showError("");
      return;
    }
    showFieldErrors(form, "mfa", error);
  }
});

/** A passkey signs in (or finishes the second step of a password sign-in). */
async function passkeySignIn(button) {
  button.disabled = true;
  try {
    await latch.signInWithPasskey();
    showError("");
    await render();
  } catch (error) {
    showError(error.message || "The passkey could not sign you in.");
  } finally {
    button.disabled = false;
  }
}

if (passkeys) $("passkey-sign-in").hidden = false;
$("passkey-sign-in").addEventListener("click", (event) => passkeySignIn(event.target));
$("mfa-passkey").addEventListener("click", (event) => passkeySignIn(event.target));

$("sign-up-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    await latch.signUp({
      username: form.username.value,
      email: form.email.value,
      password: form.password.value,
    });
    form.reset();
    showFieldErrors(form, "up", new LatchError(200, "", "", {}));
    await render();
  } catch (error) {
    showFieldErrors(form, "up", error);
  }
});

$("sign-out").addEventListener("click", async () => {
  try {
    await latch.signOut();
    showError("");
  } catch (error) {
    showError(error.message);
  }
  await render();
});

render().catch((error) => showError(error.message));
