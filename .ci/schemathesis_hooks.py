"""Schemathesis hooks for latch (loaded by .ci/schemathesis.sh through SCHEMATHESIS_HOOKS).

Every generated request is authenticated with an API token (``Authorization: Bearer``), so no
CSRF token is needed. The token comes from a real sign-in (the CSRF dance of the JSON API)
followed by ``POST /api/auth/tokens``. Fuzzed requests may end the token (revoking it, or an
admin call ending every session of its user); a 401 makes schemathesis ask for a new one.
"""

import os

import requests
import schemathesis

BASE = os.environ["LATCH_ST_URL"].rstrip("/")
LOGIN = os.environ["LATCH_ST_USER"]
PASSWORD = os.environ["LATCH_ST_PASSWORD"]


def new_token() -> str:
    """Signs in through the JSON API and creates an API token; returns its secret."""
    with requests.Session() as http:
        csrf = http.get(f"{BASE}/api/auth/csrf", timeout=30).json()["csrf_token"]
        signed_in = http.post(
            f"{BASE}/api/auth/login",
            json={"login": LOGIN, "password": PASSWORD},
            headers={"X-CSRF-Token": csrf},
            timeout=30,
        )
        signed_in.raise_for_status()
        created = http.post(
            f"{BASE}/api/auth/tokens",
            json={"name": "schemathesis"},
            headers={"X-CSRF-Token": signed_in.headers["X-CSRF-Token"]},
            timeout=30,
        )
        created.raise_for_status()
        return created.json()["secret"]


@schemathesis.auth(refresh_interval=3600)
class LatchBearer:
    """An API token for every request, renewed after a 401."""

    def get(self, case, ctx):
        return new_token()

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
