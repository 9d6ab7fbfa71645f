#!/usr/bin/env python3
"""latch in a real browser: headless Chromium (Debian's package) driven by Playwright.

    python3 tests/browser/browser_test.py http://localhost:PORT

Started by `tests/api/browser.rs` (ignored by plain `cargo test`, run by `.ci/run`) against a
fresh latch. It covers the pages with JavaScript turned off (register, a form error at its
field, sign out, sign in with `next`) and the `/app` client end to end (sign up, sign out,
a wrong password, sign in, the second step of an account with TOTP), and passkeys with
Chromium's virtual authenticator (add one on the security page, sign out, sign in with it on
`/login` and in `/app`, add it to a password session on `/login/mfa`, finish a pending TOTP
step with it). Any console error, page error or
CSP violation fails it. Exit status 0 when every check passed.
"""
import base64
import hashlib
import hmac
import os
import struct
import sys
import time

from playwright.sync_api import sync_playwright

BASE = sys.argv[1].rstrip("/")
CHROMIUM = os.environ.get("LATCH_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct horse battery staple"
SCREENSHOTS = os.environ.get("LATCH_SCREENSHOTS")  # a directory, to look at the pages


def totp(secret: str, at: float) -> str:
    """RFC 6238 (SHA-1, 6 digits, 30 s), as an authenticator app computes it."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 15
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return "%06d" % (value % 1_000_000)


class Watch:
    """Collects console errors, page errors, CSP violations and failed loads of every page.

    Chromium also logs "Failed to load resource" for answers the tests expect (a form shown
    again with 422, a 401 from `verify_auth` when signed out, a wrong password); those are
    judged by their response instead: a 404 or a 5xx is a problem, any other refusal is not.
    """

    def __init__(self):
        self.problems = []

    def console(self, name, message):
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"{name}: console: {message.text}")

    def response(self, name, response):
        if response.status == 404 or response.status >= 500:
            self.problems.append(f"{name}: {response.status} for {response.url}")

    def attach(self, page, name):
        page.on("console", lambda m: self.console(name, m))
        page.on("response", lambda r: self.response(name, r))
        page.on("pageerror", lambda e: self.problems.append(f"{name}: page error: {e}"))

    def check(self):
        assert not self.problems, "\n".join(self.problems)


# The CSP forbids `eval`, so waits use selectors (`wait_for_function` would evaluate a string).


def shot(page, name):
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def pages_without_javascript(browser, watch):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    watch.attach(page, "no-js")

    # A form error is shown at its field, with the typed values kept.
    page.goto(f"{BASE}/register")
    page.fill("#username", "nojs")
    page.fill("#email", "not-an-address")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("main button[type=submit]")
    assert page.url.endswith("/register"), page.url
    email = page.locator("#email")
    assert email.get_attribute("aria-invalid") == "true", page.content()
    assert page.locator("#email-error").inner_text().strip(), page.content()
    assert page.input_value("#username") == "nojs"
    shot(page, "register-error")

    page.fill("#email", "nojs@example.com")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("main button[type=submit]")
    assert page.url.endswith("/dashboard"), page.url
    assert "nojs" in page.inner_text("nav")
    shot(page, "dashboard")

    page.click("nav form button[type=submit]")  # Sign out
    assert "Sign in" in page.inner_text("nav"), page.content()

    # A protected page sends the visitor to sign in, and back to it afterwards.
    page.goto(f"{BASE}/account")
    assert "/login?next=%2Faccount" in page.url, page.url
    page.fill("#login", "nojs")
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    assert page.url.endswith("/account"), page.url
    shot(page, "account")
    context.close()


def app_end_to_end(browser, watch):
    context = browser.new_context()
    page = context.new_page()
    watch.attach(page, "app")
    page.goto(f"{BASE}/app")
    page.wait_for_selector("#signed-out:not([hidden])")
    shot(page, "app-signed-out")

    # A field error lands under its field.
    page.fill("#up-username", "appuser")
    page.fill("#up-email", "nope")
    page.fill("#up-password", PASSWORD)
    page.click("#sign-up-form button[type=submit]")
    page.wait_for_selector("#up-email-error:not(:empty)")
    assert page.get_attribute("#up-email", "aria-invalid") == "true"

    page.fill("#up-email", "appuser@example.com")
    page.click("#sign-up-form button[type=submit]")
    page.wait_for_selector("#signed-in:not([hidden])")
    assert page.inner_text("#me-username") == "appuser"
    assert page.inner_text("#me-mfa") == "off"
    shot(page, "app-signed-in")

    page.click("#sign-out")
    page.wait_for_selector("#signed-out:not([hidden])")

    # A wrong password is said in the alert box.
    page.fill("#in-login", "appuser")
    page.fill("#in-password", "wrong password entirely")
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#app-error:not([hidden])")
    assert "password" in page.inner_text("#app-error").lower(), page.inner_text("#app-error")

    page.fill("#in-password", PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#signed-in:not([hidden])")
    assert page.inner_text("#me-username") == "appuser"

    # Turn TOTP on through the API (same cookies as the page), then sign in again in /app.
    csrf = page.request.get(f"{BASE}/api/auth/csrf").json()["csrf_token"]
    setup = page.request.post(f"{BASE}/api/auth/mfa/totp/setup",
                              headers={"X-CSRF-Token": csrf},
                              data={"current_password": PASSWORD})
    assert setup.ok, setup.text()
    secret = setup.json()["secret"]
    confirm = page.request.post(f"{BASE}/api/auth/mfa/totp/confirm",
                                headers={"X-CSRF-Token": csrf},
                                data={"code": totp(secret, time.time())})
    assert confirm.ok, confirm.text()
    page.reload()
    page.wait_for_selector("#signed-in:not([hidden])")
    assert page.inner_text("#me-mfa") == "on"
    page.click("#sign-out")
    page.wait_for_selector("#signed-out:not([hidden])")

    page.fill("#in-login", "appuser")
    page.fill("#in-password", PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#second-step-form:not([hidden])")
    shot(page, "app-second-step")
    page.fill("#mfa-code", "000000" if totp(secret, time.time() + 30) != "000000" else "111111")
    page.click("#second-step-form button[type=submit]")
    page.wait_for_selector("#mfa-code-error:not(:empty)")
    # The code of the next step (the one used to confirm is spent: no replay).
    page.fill("#mfa-code", totp(secret, time.time() + 30))
    page.click("#second-step-form button[type=submit]")
    page.wait_for_selector("#signed-in:not([hidden])")
    assert page.inner_text("#me-username") == "appuser"
    context.close()


def virtual_authenticator(context, page):
    """Chromium's virtual authenticator (DevTools' WebAuthn domain): a platform authenticator
    that keeps discoverable credentials, verifies the user and answers at once."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }})
    return cdp, added["authenticatorId"]


def sign_out(page):
    page.click("nav form button[type=submit]")
    page.wait_for_selector("nav >> text=Sign in")


def password_sign_in(page, login):
    """`POST /api/auth/login` with the password, in the page's cookie jar."""
    csrf = page.request.get(f"{BASE}/api/auth/csrf").json()["csrf_token"]
    return page.request.post(f"{BASE}/api/auth/login", headers={"X-CSRF-Token": csrf},
                             data={"login": login, "password": PASSWORD})


def passkey_on_second_step_page(page, name, heading):
    """"Use a passkey" on /login/mfa (whose heading is `heading`), back to `next`; returns the
    factors of the session it leaves."""
    page.goto(f"{BASE}/login/mfa?next=%2Fposts")
    page.wait_for_selector("[data-passkey-second-step]:not([hidden])")
    assert heading in page.inner_text("h1"), page.inner_text("h1")
    shot(page, name)
    page.click("[data-passkey-second-step]")
    page.wait_for_url("**/posts")
    sessions = page.request.get(f"{BASE}/api/auth/sessions").json()["sessions"]
    current = next(s for s in sessions if s["current"])
    return [f["factor"] for f in current["factors"]]


def passkeys_end_to_end(browser, watch):
    context = browser.new_context()
    page = context.new_page()
    watch.attach(page, "passkeys")
    cdp, authenticator = virtual_authenticator(context, page)

    page.goto(f"{BASE}/register")
    page.fill("#username", "keyuser")
    page.fill("#email", "keyuser@example.com")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("main button[type=submit]")
    assert page.url.endswith("/dashboard"), page.url

    # Add a passkey on the security page: a wrong password is said, the right one works.
    page.goto(f"{BASE}/account/security")
    page.wait_for_selector("[data-passkey-add]:not([hidden])")
    page.fill("#passkey-name", "Virtual key")
    page.fill("#passkey-password", "not the password at all")
    page.click("[data-passkey-add] button[type=submit]")
    page.wait_for_selector("[data-passkey-add] [data-passkey-error]:not([hidden])")
    page.fill("#passkey-password", PASSWORD)
    page.click("[data-passkey-add] button[type=submit]")
    page.wait_for_url("**/account/security?done=passkey_added")
    assert "Virtual key" in page.inner_text("#passkeys"), page.inner_text("#passkeys")
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(credentials["credentials"]) == 1, credentials
    assert credentials["credentials"][0]["isResidentCredential"], credentials
    shot(page, "security-passkey")
    sign_out(page)

    # On /login the passkey is offered in the username's autofill (conditional mediation),
    # which the virtual authenticator answers at once: signed in, to `next`.
    page.goto(f"{BASE}/login?next=%2Faccount")
    page.wait_for_url("**/account")
    assert "keyuser" in page.inner_text("nav")
    sign_out(page)

    # The button, in a browser without passkey autofill (the page then only offers it).
    # Playwright's init script runs before the page's own, outside its CSP.
    page.add_init_script("PublicKeyCredential.isConditionalMediationAvailable = "
                         "async () => false;")
    page.goto(f"{BASE}/login?next=%2Fposts")
    page.wait_for_selector("[data-passkey-sign-in]:not([hidden])")
    shot(page, "login-passkey")
    assert "/login" in page.url, page.url
    page.click("[data-passkey-sign-in]")
    page.wait_for_url("**/posts")
    assert "keyuser" in page.inner_text("nav")
    sign_out(page)

    # And in /app.
    page.goto(f"{BASE}/app")
    page.wait_for_selector("#passkey-sign-in:not([hidden])")
    page.click("#passkey-sign-in")
    page.wait_for_selector("#signed-in:not([hidden])")
    assert page.inner_text("#me-username") == "keyuser"

    # A session signed in by the password alone adds the passkey on /login/mfa (a step-up,
    # where a `two_factor` rule of forward-auth sends it): back to `next` with both factors.
    password_only = password_sign_in(page, "keyuser")
    assert password_only.status == 200, password_only.text()
    factors = passkey_on_second_step_page(page, "login-mfa-step-up", "Confirm your second factor")
    assert factors == ["password", "passkey"], factors
    page.goto(f"{BASE}/app")
    page.wait_for_selector("#signed-in:not([hidden])")

    # With TOTP on, a passkey finishes the second step of a password sign-in.
    csrf = page.request.get(f"{BASE}/api/auth/csrf").json()["csrf_token"]
    setup = page.request.post(f"{BASE}/api/auth/mfa/totp/setup",
                              headers={"X-CSRF-Token": csrf},
                              data={"current_password": PASSWORD})
    assert setup.ok, setup.text()
    confirm = page.request.post(f"{BASE}/api/auth/mfa/totp/confirm",
                                headers={"X-CSRF-Token": csrf},
                                data={"code": totp(setup.json()["secret"], time.time())})
    assert confirm.ok, confirm.text()
    page.reload()
    page.wait_for_selector("#signed-in:not([hidden])")
    page.click("#sign-out")
    page.wait_for_selector("#signed-out:not([hidden])")
    page.fill("#in-login", "keyuser")
    page.fill("#in-password", PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#mfa-passkey:not([hidden])")
    page.click("#mfa-passkey")
    page.wait_for_selector("#signed-in:not([hidden])")
    assert page.inner_text("#me-mfa") == "on"

    # The pages do the same: the password, then "Use a passkey instead" on /login/mfa.
    page.goto(f"{BASE}/dashboard")
    sign_out(page)
    pending = password_sign_in(page, "keyuser")
    assert pending.status == 202, pending.text()
    assert "passkey" in pending.json()["methods"], pending.text()
    factors = passkey_on_second_step_page(page, "login-mfa-passkey", "Two-factor sign-in")
    assert factors == ["password", "passkey"], factors
    context.close()


def main():
    watch = Watch()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            pages_without_javascript(browser, watch)
            app_end_to_end(browser, watch)
            passkeys_end_to_end(browser, watch)
        finally:
            browser.close()
    watch.check()
    print("browser checks passed")


if __name__ == "__main__":
    main()
