#!/usr/bin/env python3
"""What a sign-in with TOTP costs over one without: latency of each step and rows written.

Starts `latch serve` (the binary given, default Argon2 parameters) on a fresh PostgreSQL
database, signs up N users without and N with TOTP, then signs each in once, sequentially,
timing every request; rows written are read from pg_stat_user_tables around each phase.
Each TOTP user signs in once because a TOTP step is accepted only once.
    python3 bench/mfa_sign_in.py path/to/latch [N]
Standard library only (RFC 6238 done here with hmac).
"""
import base64, hashlib, hmac, http.cookiejar, json, os, statistics, struct, subprocess, sys, time
import urllib.error, urllib.request

BIN = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 30
PG = "postgres://postgres@127.0.0.1:5432/"
DB = f"latch_mfa_bench_{os.getpid()}"
PASSWORD = "correct horse battery staple"


def psql(sql, db="postgres"):
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", sql, db],
                          check=True, capture_output=True, text=True).stdout.strip()


def totp(secret, t):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">q", int(t) // 30), hashlib.sha1).digest()
    o = digest[-1] & 15
    return "%06d" % ((struct.unpack(">I", digest[o:o + 4])[0] & 0x7FFFFFFF) % 1_000_000)


class Client:
    def __init__(self, base):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.token = None

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("X-CSRF-Token", self.token)
        start = time.perf_counter()
        try:
            resp = self.opener.open(req)
        except urllib.error.HTTPError as e:
            resp = e
        text = resp.read()
        elapsed = time.perf_counter() - start
        self.token = resp.headers.get("X-CSRF-Token") or self.token
        return resp.status, (json.loads(text) if text else None), elapsed

    def csrf(self):
        self.token = self.call("GET", "/api/auth/csrf")[1]["csrf_token"]


def rows_written():
    psql("SELECT pg_stat_force_next_flush()", DB)
    time.sleep(11)  # idle backends flush their counters within 10 s
    out = psql("SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables", DB)
    return {line.split("|")[0]: int(line.split("|")[1]) for line in out.splitlines()}


def diff(before, after):
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def main():
    psql(f"CREATE DATABASE {DB}")
    env = dict(os.environ, LATCH_LOG="warn", LATCH_MAIL_OUTBOX=f"/tmp/{DB}-outbox",
               LATCH_THROTTLE_IP_SIGNUPS_PER_HOUR="100000")
    server = subprocess.Popen([BIN, "serve", "--bind", "127.0.0.1:0", "--database", PG + DB],
                              stdout=subprocess.PIPE, env=env, text=True)
    try:
        base = server.stdout.readline().split()[3]
        plain, secrets = [], []
        for i in range(N):
            c = Client(base); c.csrf()
            c.call("POST", "/api/auth/signup", {"username": f"plain{i}", "email": f"plain{i}@example.com", "password": PASSWORD})
            c = Client(base); c.csrf()
            c.call("POST", "/api/auth/signup", {"username": f"totp{i}", "email": f"totp{i}@example.com", "password": PASSWORD})
            s = c.call("POST", "/api/auth/mfa/totp/setup", {"current_password": PASSWORD})[1]["secret"]
            assert c.call("POST", "/api/auth/mfa/totp/confirm", {"code": totp(s, time.time())})[0] == 200
            secrets.append(s)
        results = {}
        before = rows_written()
        for i in range(N):
            c = Client(base); c.csrf()
            st, _, t = c.call("POST", "/api/auth/login", {"login": f"plain{i}", "password": PASSWORD})
            assert st == 200, st
            plain.append(t)
        results["password only"] = (plain, diff(before, rows_written()))
        step1, step2, total = [], [], []
        before = rows_written()
        for i in range(N):
            c = Client(base); c.csrf()
            st, _, t1 = c.call("POST", "/api/auth/login", {"login": f"totp{i}", "password": PASSWORD})
            assert st == 202, st
            # The code of the next step: the confirmation used the current one.
            st, _, t2 = c.call("POST", "/api/auth/mfa", {"code": totp(secrets[i], time.time() + 30)})
            assert st == 200, st
            step1.append(t1); step2.append(t2); total.append(t1 + t2)
        written = diff(before, rows_written())
        results["TOTP: password step"] = (step1, None)
        results["TOTP: code step"] = (step2, None)
        results["TOTP: both steps"] = (total, written)
        for name, (times, rows) in results.items():
            ms = sorted(t * 1000 for t in times)
            line = f"{name:22} median {statistics.median(ms):7.1f} ms  p90 {ms[int(len(ms) * 0.9) - 1]:7.1f} ms"
            if rows is not None:
                per = {k: round(v / N, 2) for k, v in sorted(rows.items())}
                line += f"  rows written per sign-in {round(sum(rows.values()) / N, 2)}: {per}"
            print(line)
    finally:
        server.terminate(); server.wait()
        time.sleep(0.5)
        psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


main()
