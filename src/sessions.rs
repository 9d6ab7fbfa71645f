//! Sessions: a 256-bit secret in an HttpOnly cookie, only its hash in the database.
//!
//! A session is created when a visitor first needs one (a CSRF token for the sign-in form),
//! replaced by a new one at sign-in and sign-up (so a planted id is worthless), and deleted at
//! sign-out. Loading it is one indexed lookup that also returns the user; the idle timer is
//! written back at most once a minute, not on every request.

use cookie::{Cookie, SameSite};

use crate::clock::Timestamp;
use crate::domain::{Factor, Factors, SecretToken};
use crate::state::AppState;
use crate::store::sessions::{self as store, ClientInfo, Holder, SessionRecord};
use crate::store::StoreError;
use crate::user::AuthUser;

/// Seconds between two writes of `last_seen_at` for one session.
const TOUCH_INTERVAL: i64 = 60;

/// Seconds a sign-in may wait for its second factor.
pub const PENDING_TTL: i64 = 5 * 60;

/// A sign-in whose password was right, waiting for its second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingSignIn {
    /// The user signing in.
    pub user_id: i64,
    /// The credential generation the password was checked under.
    pub credential_gen: i64,
    /// Whether "remember me" was asked for.
    pub remember: bool,
    /// When the password was checked.
    pub since: Timestamp,
}

/// The session of the current request.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    token: SecretToken,
    record: SessionRecord,
}

impl ActiveSession {
    /// The signed-in user, if any.
    pub fn user(&self) -> Option<AuthUser> {
        AuthUser::from_session(&self.record)
    }

    /// Whether a user is signed in with it (not anonymous, not a pending sign-in).
    pub fn is_signed_in(&self) -> bool {
        self.record.user_id.is_some()
    }

    /// The public id of this session.
    pub fn id(&self) -> i64 {
        self.record.id
    }

    /// The CSRF token bound to this session (derived from its secret, so never stored).
    pub fn csrf_token(&self) -> String {
        self.token.derive("csrf")
    }

    /// Whether it is a "remember me" session.
    pub fn remember(&self) -> bool {
        self.record.remember
    }

    /// The secret (to hash for deletion).
    pub fn token(&self) -> &SecretToken {
        &self.token
    }

    /// The credential generation the session was made under: a signed-in session counts only
    /// while it is its user's.
    pub fn credential_gen(&self) -> i64 {
        self.record.credential_gen
    }

    /// How the session was made.
    pub fn factors(&self) -> Factors {
        Factors::parse(&self.record.factors)
    }

    /// The sign-in waiting for a second factor in this session, unless it is older than
    /// [`PENDING_TTL`] at `now`.
    pub fn pending(&self, now: Timestamp) -> Option<PendingSignIn> {
        let user_id = self.record.pending_user_id?;
        (now - self.record.created_at <= PENDING_TTL).then_some(PendingSignIn {
            user_id,
            credential_gen: self.record.credential_gen,
            remember: self.record.pending_remember,
            since: self.record.created_at,
        })
    }
}

/// The cookie's name: `__Host-` prefixed behind https, so no subdomain can set it. With
/// `cookie_domain` the cookie must carry a `Domain`, which `__Host-` forbids: it is then
/// `__Secure-` prefixed behind https (still only settable over https).
pub fn cookie_name(state: &AppState) -> &'static str {
    match (
        state.config.is_https(),
        state.config.cookie_domain.is_some(),
    ) {
        (true, false) => "__Host-latch_session",
        (true, true) => "__Secure-latch_session",
        (false, _) => "latch_session",
    }
}

/// Finds the session for a cookie value without writing anything: no idle-timer update and no
/// deletion of an expired session (it is only reported as absent). Forward-auth uses it, since
/// every request to every protected application goes through it.
pub async fn peek(
    state: &AppState,
    cookie_value: &str,
) -> Result<Option<ActiveSession>, StoreError> {
    let Some(token) = SecretToken::from_client(cookie_value) else {
        return Ok(None);
    };
    match find_live_record(state, &token, state.clock.now()).await? {
        Lookup::Live(record) => Ok(Some(ActiveSession { token, record })),
        Lookup::Dead | Lookup::Unknown => Ok(None),
    }
}

/// What a cookie's session lookup found.
// Returned by value and matched at once; boxing the record would cost every request an
// allocation to save a few stack bytes.
#[allow(clippy::large_enum_variant)]
enum Lookup {
    /// A live session.
    Live(SessionRecord),
    /// A session past its idle or absolute lifetime, or of a locked user.
    Dead,
    /// No such session.
    Unknown,
}

/// The session of `token` as of `now`. A cached record that looks dead is read again from the
/// database: only the database decides that a session is dead (the cache may hold an older
/// `last_seen_at` than another node wrote).
async fn find_live_record(
    state: &AppState,
    token: &SecretToken,
    now: Timestamp,
) -> Result<Lookup, StoreError> {
    let hash = token.hash();
    // Asked before any read: a note is forgotten only after its write committed.
    let own_touch = state.touches.seen(&hash);
    if let Some(cache) = &state.session_cache {
        if let Some(mut record) = cache.get(&hash) {
            with_own_touch(&mut record, own_touch);
            if is_live(state, &record, now) {
                return Ok(Lookup::Live(record));
            }
            cache.remove(&hash);
        }
    }
    let ticket = state.session_cache.as_ref().map(|c| c.ticket());
    let mut found = find_record(state, &hash).await?;
    if let Some(record) = &mut found {
        with_own_touch(record, own_touch);
    }
    Ok(match found {
        Some(record) if is_live(state, &record, now) => {
            // Only live sessions are kept: a dead one is deleted by the caller.
            if let (Some(cache), Some(ticket)) = (&state.session_cache, ticket) {
                cache.put(hash, record.clone(), ticket);
            }
            Lookup::Live(record)
        }
        Some(_) => Lookup::Dead,
        None => Lookup::Unknown,
    })
}

/// `last_seen_at` as this node last saw the session, when its write was still on the way
/// ([`crate::store::touches`]).
fn with_own_touch(record: &mut SessionRecord, own_touch: Option<Timestamp>) {
    if let Some(at) = own_touch {
        record.last_seen_at = record.last_seen_at.max(at);
    }
}

/// Reads the record for `hash` from the database.
async fn find_record(
    state: &AppState,
    hash: &crate::domain::TokenHash,
) -> Result<Option<SessionRecord>, StoreError> {
    if let Some(found) = state
        .sqlite_reader
        .as_ref()
        .and_then(|r| r.find_session(hash))
    {
        return Ok(found);
    }
    match &state.session_batcher {
        Some(batcher) => batcher.find(*hash).await,
        None => store::find(&state.db, hash).await,
    }
}

fn is_live(state: &AppState, record: &SessionRecord, now: Timestamp) -> bool {
    !is_expired(state, record, now) && record.locked != Some(true)
}

/// Finds the session for a cookie value; `None` when unknown, expired or malformed.
pub async fn load(
    state: &AppState,
    cookie_value: &str,
) -> Result<Option<ActiveSession>, StoreError> {
    let Some(token) = SecretToken::from_client(cookie_value) else {
        return Ok(None);
    };
    let now = state.clock.now();
    let mut record = match find_live_record(state, &token, now).await? {
        Lookup::Live(record) => record,
        Lookup::Dead => {
            store::delete_by_hash(&state.db, &token.hash()).await?;
            return Ok(None);
        }
        Lookup::Unknown => return Ok(None),
    };
    // Written at most once a minute (or a tenth of a short idle timeout), so activity keeps
    // a session alive to within that much of the timeout.
    let interval = TOUCH_INTERVAL.min((state.config.session_idle_timeout_secs / 10).max(1));
    if now - record.last_seen_at >= interval {
        let hash = token.hash();
        state.touches.note(hash, record.id, now);
        record.last_seen_at = now;
        if let Some(cache) = &state.session_cache {
            cache.touched(&hash, now);
        }
    }
    Ok(Some(ActiveSession { token, record }))
}

fn is_expired(state: &AppState, record: &SessionRecord, now: Timestamp) -> bool {
    let config = &state.config;
    let (idle, absolute) = if record.remember {
        (config.remember_me_secs, config.remember_me_secs)
    } else {
        (
            config.session_idle_timeout_secs,
            config.session_absolute_timeout_secs,
        )
    };
    now - record.last_seen_at > idle || now - record.created_at > absolute
}

/// A newly started session and the `Set-Cookie` value that hands it to the client.
#[derive(Debug)]
pub struct NewSession {
    /// The session, as later requests will load it.
    pub session: ActiveSession,
    /// The `Set-Cookie` header value.
    pub set_cookie: String,
}

/// Starts a session (anonymous when `user` is `None`), replacing `previous` if given; a
/// user's session is made by their password, now.
///
/// The session carries `user.credential_gen`, i.e. the generation of the record the
/// password was checked against: if a revocation committed since, it is born dead.
pub async fn start(
    state: &AppState,
    user: Option<&crate::store::users::UserRecord>,
    remember: bool,
    client: &ClientInfo,
    previous: Option<&ActiveSession>,
) -> Result<NewSession, StoreError> {
    let factors = match user {
        Some(_) => Factors::one(Factor::Password, state.clock.now()),
        None => Factors::none(),
    };
    start_with(state, user, &factors, remember, client, previous).await
}

/// [`start`] with the factors that made the session (a completed second step, a session
/// re-issued at TOTP confirmation).
pub async fn start_with(
    state: &AppState,
    user: Option<&crate::store::users::UserRecord>,
    factors: &Factors,
    remember: bool,
    client: &ClientInfo,
    previous: Option<&ActiveSession>,
) -> Result<NewSession, StoreError> {
    let stored = factors.to_stored();
    let holder = match user {
        Some(u) => Holder::User(u.id, u.credential_gen, &stored),
        None => Holder::Anonymous,
    };
    insert_session(state, holder, user, remember, client, previous).await
}

/// Starts a *pending* session for `user`, whose password was just checked, replacing
/// `previous`: anonymous (nothing but the second step accepts it) and session-only until the
/// second step starts the real one.
pub async fn start_pending(
    state: &AppState,
    user: &crate::store::users::UserRecord,
    remember: bool,
    client: &ClientInfo,
    previous: Option<&ActiveSession>,
) -> Result<NewSession, StoreError> {
    let holder = Holder::Pending(user.id, user.credential_gen, remember);
    insert_session(state, holder, None, false, client, previous).await
}

async fn insert_session(
    state: &AppState,
    holder: Holder<'_>,
    user: Option<&crate::store::users::UserRecord>,
    remember: bool,
    client: &ClientInfo,
    previous: Option<&ActiveSession>,
) -> Result<NewSession, StoreError> {
    let token = SecretToken::generate().map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let now = state.clock.now();
    let user_id = user.map(|u| u.id);
    let replacing = previous.map(|p| p.token.hash());
    let id = store::insert(
        &state.db,
        &token.hash(),
        holder,
        remember,
        now,
        client,
        replacing.as_ref(),
    )
    .await?;
    let (credential_gen, factors, pending_user_id, pending_remember) = match holder {
        Holder::Anonymous => (0, String::new(), None, false),
        Holder::User(_, gen, factors) => (gen, factors.to_owned(), None, false),
        Holder::Pending(id, gen, remember) => (gen, String::new(), Some(id), remember),
    };
    let record = SessionRecord {
        id,
        user_id,
        remember,
        created_at: now,
        last_seen_at: now,
        username: user.map(|u| u.username.clone()),
        email: user.map(|u| u.email.clone()),
        email_verified: user.map(|u| u.email_verified),
        first_name: user.and_then(|u| u.first_name.clone()),
        last_name: user.and_then(|u| u.last_name.clone()),
        roles: user.map(|u| u.roles.clone()),
        locked: user.map(|u| u.locked),
        user_created_at: user.map(|u| u.created_at),
        credential_gen,
        mfa_enabled: user.map(|u| u.mfa_enabled),
        passkey_count: user.map(|u| u.passkey_count),
        factors,
        pending_user_id,
        pending_remember,
    };
    let max_age = remember.then_some(state.config.remember_me_secs);
    let set_cookie = session_cookie(state, token.expose(), max_age);
    Ok(NewSession {
        session: ActiveSession { token, record },
        set_cookie,
    })
}

/// Starts a new signed-in session for user `id` as stored now, in place of `current` (an
/// administrator whose own sessions a change of theirs just ended): made by the factors
/// `current` proved (a two-factor session stays two-factor), and "remember me" as it was.
/// `None` when the user is gone.
pub async fn reissue(
    state: &AppState,
    id: i64,
    current: Option<&ActiveSession>,
    client: &ClientInfo,
) -> Result<Option<NewSession>, StoreError> {
    let factors = current
        .map(ActiveSession::factors)
        .filter(|f| f.iter().next().is_some())
        .unwrap_or_else(|| Factors::one(Factor::Password, state.clock.now()));
    let remember = current.is_some_and(ActiveSession::remember);
    start_for(state, id, &factors, remember, client, None).await
}

/// A new session of user `id` as stored now, made by `factors`, replacing `previous`; `None`
/// when the user is gone.
async fn start_for(
    state: &AppState,
    id: i64,
    factors: &Factors,
    remember: bool,
    client: &ClientInfo,
    previous: Option<&ActiveSession>,
) -> Result<Option<NewSession>, StoreError> {
    let Some(record) = crate::store::users::find_by_id(&state.db, id).await? else {
        return Ok(None);
    };
    let new = start_with(state, Some(&record), factors, remember, client, previous).await?;
    Ok(Some(new))
}

/// The session that replaces `current` once user `id` added a second factor (TOTP confirmed,
/// or a passkey that releases a `require_mfa_roles` hold): a new id, the user as stored now,
/// and the factors of `current` plus `factor`, proved now. `None` without a session, or when
/// the user is gone.
pub async fn reissue_with_factor(
    state: &AppState,
    id: i64,
    current: Option<&ActiveSession>,
    factor: Factor,
    client: &ClientInfo,
) -> Result<Option<NewSession>, StoreError> {
    let Some(current) = current else {
        return Ok(None);
    };
    let factors = current.factors().and(factor, state.clock.now());
    start_for(
        state,
        id,
        &factors,
        current.remember(),
        client,
        Some(current),
    )
    .await
}

/// The session that replaces `current` after its user changed their password: a new id and
/// the new credential generation, but the factors `current` was signed in with (the password
/// was just proved again), so a two-factor session stays two-factor.
pub async fn reissue_after_password_change(
    state: &AppState,
    record: &crate::store::users::UserRecord,
    current: Option<&ActiveSession>,
    client: &ClientInfo,
) -> Result<NewSession, StoreError> {
    let now = state.clock.now();
    let factors = current
        .map(|s| {
            s.factors()
                .iter()
                .filter(|(f, _)| *f != Factor::Password)
                .fold(Factors::one(Factor::Password, now), |all, (f, at)| {
                    all.and(f, at)
                })
        })
        .unwrap_or_else(|| Factors::one(Factor::Password, now));
    let remember = current.is_some_and(|s| s.remember());
    start_with(state, Some(record), &factors, remember, client, None).await
}

/// Deletes the session (sign-out, audited) and returns the `Set-Cookie` value that clears
/// the cookie.
pub async fn end(
    state: &AppState,
    session: &ActiveSession,
    client: &ClientInfo,
) -> Result<String, StoreError> {
    store::delete_by_hash(&state.db, &session.token.hash()).await?;
    if let Some(user) = session.user() {
        let subject = crate::audit::Subject::user(user.id, &user.username);
        crate::audit::record(
            state,
            crate::audit::Event::SignOut,
            subject,
            client,
            "success",
            None,
        )
        .await;
    }
    Ok(removal_cookie(state))
}

/// A `Set-Cookie` value that deletes the session cookie.
pub fn removal_cookie(state: &AppState) -> String {
    session_cookie(state, "", Some(0))
}

/// Builds the cookie: HttpOnly, SameSite=Lax, Path=/, Secure behind https, and a lifetime
/// only for "remember me" (otherwise it ends with the browser).
fn session_cookie(state: &AppState, value: &str, max_age: Option<i64>) -> String {
    let mut cookie = Cookie::build((cookie_name(state), value.to_owned()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(state.config.is_https());
    if let Some(domain) = state.config.cookie_domain() {
        cookie = cookie.domain(domain);
    }
    if let Some(seconds) = max_age {
        cookie = cookie.max_age(cookie::time::Duration::seconds(seconds));
    }
    cookie.build().to_string()
}

/// The configured lifetimes at the current time.
pub fn lifetimes(state: &AppState) -> store::Lifetimes {
    let c = &state.config;
    store::Lifetimes {
        now: state.clock.now(),
        idle: c.session_idle_timeout_secs,
        absolute: c.session_absolute_timeout_secs,
        remember: c.remember_me_secs,
    }
}

/// Pause between two purge batches, so requests' own writes get the database in between and
/// the purge leaves most of the CPU to requests (a million expired sessions then take about
/// four minutes, once; see [`store::PURGE_BATCH`]).
const PURGE_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Deletes expired sessions and sign-in failures past the throttling window; run periodically.
/// Sessions go in batches of [`store::PURGE_BATCH`] with a pause between them, so a purge of
/// a million expired sessions never holds the database for long at a time; on a SQLite file
/// they go on a low-priority thread of their own ([`store::purge_sqlite_file`]).
pub async fn purge_expired(state: &AppState) -> Result<u64, StoreError> {
    let c = &state.config;
    let now = state.clock.now();
    // Throttle events are kept for the longest window (an hour for mail and sign-up limits).
    crate::store::throttle::purge(&state.db, now - c.throttle_window_secs.max(3600)).await?;
    crate::store::tokens::purge(&state.db, now).await?;
    crate::store::passkeys::purge_ceremonies(&state.db, now).await?;
    let cutoffs = store::ExpiryCutoffs {
        idle_before: now - c.session_idle_timeout_secs,
        created_before: now - c.session_absolute_timeout_secs,
        remember_before: now - c.remember_me_secs,
    };
    // The inline reader exists only for a SQLite file (not an in-memory database, which a
    // second connection would not see).
    if let (Some(path), Some(_)) = (state.db.sqlite_path(), &state.sqlite_reader) {
        return store::purge_sqlite_file(path, cutoffs, PURGE_PAUSE).await;
    }
    let mut total = 0;
    loop {
        let done = store::delete_expired_batch(&state.db, cutoffs).await?;
        total += done;
        if done < store::PURGE_BATCH as u64 {
            return Ok(total);
        }
        tokio::time::sleep(PURGE_PAUSE).await;
    }
}

/// A session's factors for the session list: `[{"factor": "password", "at": "…"}, …]`.
pub fn factors_json(stored: &str) -> serde_json::Value {
    Factors::parse(stored)
        .iter()
        .map(|(factor, at)| {
            serde_json::json!({ "factor": factor.as_str(), "at": crate::clock::rfc3339(at) })
        })
        .collect()
}

/// A session's factors for people: "password + TOTP".
pub fn describe_factors(stored: &str) -> String {
    let names: Vec<&str> = Factors::parse(stored)
        .iter()
        .map(|(factor, _)| match factor {
            Factor::Password => "password",
            Factor::Totp => "TOTP code",
            Factor::RecoveryCode => "recovery code",
            Factor::Passkey => "passkey",
            Factor::SecurityKey => "passkey without PIN or biometrics",
        })
        .collect();
    if names.is_empty() {
        "unknown".into()
    } else {
        names.join(" + ")
    }
}

/// A short readable summary of a `User-Agent` ("Firefox on Linux"), for the session list.
///
/// Hand-written rather than a UA-parsing crate: the list only needs the browser family and
/// the platform, and the full parsers ship megabytes of regexes.
pub fn describe_user_agent(ua: Option<&str>) -> String {
    let Some(ua) = ua.filter(|u| !u.trim().is_empty()) else {
        return "Unknown client".into();
    };
    let browsers = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("python-requests", "Python requests"),
        ("reqwest", "reqwest"),
        ("Wget/", "Wget"),
    ];
    let platforms = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ];
    let browser = browsers
        .iter()
        .find(|(needle, _)| ua.contains(needle))
        .map(|(_, name)| *name);
    let platform = platforms
        .iter()
        .find(|(needle, _)| ua.contains(needle))
        .map(|(_, name)| *name);
    match (browser, platform) {
        (Some(b), Some(p)) => format!("{b} on {p}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(p)) => format!("Browser on {p}"),
        (None, None) => ua.chars().take(40).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_user_agent;

    #[test]
    fn user_agents_are_summarised() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(describe_user_agent(Some(firefox)), "Firefox on Linux");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
        assert_eq!(describe_user_agent(Some(chrome)), "Chrome on Windows");
        assert_eq!(describe_user_agent(Some("curl/8.5.0")), "curl");
        assert_eq!(describe_user_agent(None), "Unknown client");
    }
}
