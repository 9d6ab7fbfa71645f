// pages.js: the passkey controls of latch's own pages, on top of latch.js. Every page works
// without it: the controls it drives are `hidden` in the HTML and shown only here, when the
// browser has passkeys.
//
//   /login              "Sign in with a passkey", and passkeys in the username's autofill
//   /login/mfa          "Use a passkey" to finish a sign-in waiting for its second factor
//   /account/security   "Add a passkey"

import { Latch, LatchError } from "./latch.js";

const latch = new Latch();

function show(element, message) {
  if (!element) return;
  element.textContent = message;
  element.hidden = !message;
}

/** Where to go after signing in: the page's checked `next`, else the dashboard. */
function destination(root) {
  return root.dataset.next || `${latch.base}/dashboard`;
}

function describe(error) {
  if (error instanceof LatchError) return error.message;
  return "Something went wrong. Try again, or sign in with your password.";
}

/** The sign-in page: a button, and (where the browser offers it) the passkey autofill,
 *  which waits in the background until the user picks a passkey or presses the button. */
function signInPage(root) {
  const button = root.querySelector("[data-passkey-sign-in]");
  const error = root.querySelector("[data-passkey-error]");
  let waiting = null;

  async function signIn(mediation) {
    if (waiting) waiting.abort();
    const controller = new AbortController();
    waiting = controller;
    try {
      await latch.signInWithPasskey({ mediation, signal: controller.signal });
      window.location.assign(destination(root));
    } catch (e) {
      if (controller.signal.aborted || (e && e.name === "AbortError")) return;
      // The autofill wait ends quietly; a pressed button says what happened.
      if (mediation !== "conditional") show(error, describe(e));
    } finally {
      if (waiting === controller) waiting = null;
    }
  }

  if (button) {
    button.hidden = false;
    button.addEventListener("click", () => {
      show(error, "");
      signIn(undefined);
    });
  }
  Latch.passkeyAutofillSupported()
    .then((supported) => {
      if (supported) signIn("conditional");
    })
    .catch(() => {});
}

/** The second step of a sign-in: a passkey of the same user finishes it. */
function secondStepPage(root) {
  const button = root.querySelector("[data-passkey-second-step]");
  const error = root.querySelector("[data-passkey-error]");
  if (!button) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    show(error, "");
    button.disabled = true;
    try {
      await latch.signInWithPasskey();
      window.location.assign(destination(root));
    } catch (e) {
      show(error, describe(e));
    } finally {
      button.disabled = false;
    }
  });
}

/** The security page: the "Add a passkey" form (name and, unless just signed in with a
 *  passkey, the current password). */
function securityPage(root) {
  const form = root.querySelector("[data-passkey-add]");
  if (!form) return;
  const error = form.querySelector("[data-passkey-error]");
  form.hidden = false;
  const note = root.querySelector("[data-passkey-needs-script]");
  if (note) note.hidden = true;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    show(error, "");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await latch.addPasskey({
        name: form.elements.name.value,
        current_password: form.elements.current_password.value,
      });
      window.location.assign(`${latch.base}/account/security?done=passkey_added`);
    } catch (e) {
      const fields = e instanceof LatchError ? e.fields : {};
      const message =
        e instanceof LatchError && e.code === "invalid_credentials"
          ? "This is not your current password."
          : (fields.current_password || fields.name || [])[0] || describe(e);
      show(error, message);
    } finally {
      button.disabled = false;
    }
  });
}

if (Latch.passkeysSupported()) {
  for (const root of document.querySelectorAll("[data-passkeys]")) {
    const page = root.dataset.passkeys;
    if (page === "sign-in") signInPage(root);
    else if (page === "second-step") secondStepPage(root);
    else if (page === "security") securityPage(root);
  }
}
