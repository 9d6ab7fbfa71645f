//! Configuration: built-in defaults, then an optional `latch.toml`, then `LATCH_*` environment
//! variables, then command-line flags (each layer overrides the one before).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The effective configuration of a latch process.
///
/// `Debug` masks every secret, so a `Config` may be logged.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// `sqlite://path` or `postgres://…`.
    pub database_url: String,
    /// External URL of latch's pages (`https://auth.example.com`, or with a path such as
    /// `https://example.com/auth` when latch is mounted under a prefix); defaults to
    /// `http://<bind>`.
    pub public_url: Option<String>,
    /// Directory where mail is written when no SMTP server is configured.
    pub mail_outbox: PathBuf,
    /// `smtp://user:pass@host:587` or `smtps://…`; when set, mail goes over SMTP.
    pub smtp_url: Option<String>,
    /// Sender of every mail.
    pub mail_from: String,
    /// Peers whose `X-Forwarded-For` is believed (IP addresses or CIDR ranges); a list in
    /// `latch.toml`, comma-separated in `LATCH_TRUSTED_PROXIES`.
    #[serde(deserialize_with = "list_or_csv")]
    pub trusted_proxies: Vec<String>,
    /// Refuse sign-in to accounts whose email address is not verified.
    pub require_verified_email: bool,
    /// Roles whose holders must turn on a second factor before anything else (a list in
    /// `latch.toml`, comma-separated in `LATCH_REQUIRE_MFA_ROLES`).
    #[serde(deserialize_with = "list_or_csv")]
    pub require_mfa_roles: Vec<String>,
    /// Argon2id memory cost in KiB.
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    pub argon2_iterations: u32,
    /// Argon2id lanes.
    pub argon2_parallelism: u32,
    /// Password hashes computed at once; 0 means one per CPU core.
    pub hash_workers: usize,
    /// Seconds of inactivity after which a session ends.
    pub session_idle_timeout_secs: i64,
    /// Seconds after sign-in after which a session ends whatever its activity.
    pub session_absolute_timeout_secs: i64,
    /// Idle and absolute lifetime of a "remember me" session, in seconds.
    pub remember_me_secs: i64,
    /// Failed sign-ins per account within the window before sign-in answers 429.
    pub throttle_account_failures: i64,
    /// Failed sign-ins per client IP within the window before sign-in answers 429.
    pub throttle_ip_failures: i64,
    /// Length of the throttling window in seconds.
    pub throttle_window_secs: i64,
    /// Sign-ups per client IP per hour.
    pub throttle_ip_signups_per_hour: i64,
    /// Forgot-password and verification-resend requests per client IP per hour.
    pub throttle_ip_mail_requests_per_hour: i64,
    /// Reset and verification mails per address per hour.
    pub throttle_address_mails_per_hour: i64,
    /// Passkey sign-ins started per client IP per minute, counted in memory (a start writes
    /// a challenge row, so it must not cost one to count).
    pub throttle_ip_passkey_starts_per_minute: i64,
    /// Largest number of database connections; 0 picks a default for the database kind.
    pub db_max_connections: u32,
    /// Seconds to wait for a database connection before answering 503.
    pub db_acquire_timeout_secs: u64,
    /// Seconds a connection has to send complete request headers (from its opening, or from
    /// the first byte of a later request) before it is closed: slow clients cannot hold it.
    pub header_timeout_secs: u64,
    /// Seconds an idle keep-alive connection (no request in progress) stays open.
    pub keepalive_timeout_secs: u64,
    /// Seconds a request may take from complete headers to response; then 503.
    pub request_timeout_secs: u64,
    /// Open connections per listener; further ones wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// Milliseconds a node may answer a session lookup from memory (0, the default: never).
    /// The bound on how late a sign-out or revocation made on another node is seen here
    /// (see `store::session_cache`).
    pub session_cache_ms: u64,
    /// Where `/metrics` is served: unset (the main listener), `off`, or an address of its own.
    pub metrics_bind: Option<String>,
    /// Forward-auth rules (`[[access_rules]]`), first match wins.
    pub access_rules: Vec<crate::domain::access::RuleSpec>,
    /// Forward-auth policy when no rule matches.
    pub default_policy: String,
    /// Domains (and their subdomains) a sign-in may return to with an absolute `next`; a
    /// list in `latch.toml`, comma-separated in `LATCH_REDIRECT_DOMAINS`.
    #[serde(deserialize_with = "list_or_csv")]
    pub redirect_domains: Vec<String>,
    /// Domain of the session cookie (e.g. `example.com`), so one sign-in covers its subdomains.
    pub cookie_domain: Option<String>,
}

/// Where `/metrics` is served (the parsed `metrics_bind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsBind {
    /// On the main listener, next to the application.
    Main,
    /// Nowhere: `/metrics` is 404.
    Off,
    /// On its own listener at this address, and not on the main one.
    Addr(SocketAddr),
}

/// The longest `session_cache_ms`: a revocation must not wait longer than a minute.
const MAX_SESSION_CACHE_MS: u64 = 60_000;

/// The largest accepted timeout, so deadlines never overflow (one day).
const MAX_TIMEOUT_SECS: u64 = 86_400;

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://latch.db".into(),
            public_url: None,
            mail_outbox: PathBuf::from("outbox"),
            smtp_url: None,
            mail_from: "latch <no-reply@localhost>".into(),
            trusted_proxies: Vec::new(),
            require_verified_email: false,
            require_mfa_roles: Vec::new(),
            argon2_memory_kib: argon2::Params::DEFAULT_M_COST,
            argon2_iterations: argon2::Params::DEFAULT_T_COST,
            argon2_parallelism: argon2::Params::DEFAULT_P_COST,
            hash_workers: 0,
            session_idle_timeout_secs: 30 * 60,
            session_absolute_timeout_secs: 12 * 3600,
            remember_me_secs: 30 * 24 * 3600,
            throttle_account_failures: 5,
            throttle_ip_failures: 100,
            throttle_window_secs: 15 * 60,
            throttle_ip_signups_per_hour: 200,
            throttle_ip_mail_requests_per_hour: 30,
            throttle_address_mails_per_hour: 5,
            throttle_ip_passkey_starts_per_minute: 30,
            db_max_connections: 0,
            db_acquire_timeout_secs: 5,
            header_timeout_secs: 30,
            keepalive_timeout_secs: 60,
            request_timeout_secs: 30,
            max_connections: 1024,
            session_cache_ms: 0,
            metrics_bind: None,
            access_rules: Vec::new(),
            default_policy: "one_factor".into(),
            redirect_domains: Vec::new(),
            cookie_domain: None,
        }
    }
}

/// Values given as command-line flags; `None` leaves the lower layers alone.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    /// `--bind`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// `--database`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `--public-url`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// `--mail-outbox`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_outbox: Option<PathBuf>,
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer could not be read or a value has the wrong type.
    #[error("invalid configuration: {0}")]
    Load(String),
    /// A forward-auth rule (or `default_policy`) does not compile: one line naming it.
    #[error("invalid configuration: {0}")]
    Rule(String),
    /// A value has the right type but is not acceptable.
    #[error("invalid configuration: {field}: {message}")]
    Invalid {
        /// The setting's name.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// The kind of database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Config {
    /// Loads the layers: defaults, the TOML file (`path`, which must exist when `required`),
    /// `LATCH_*` variables, then `overrides`.
    pub fn load(path: &Path, required: bool, overrides: &Overrides) -> Result<Self, ConfigError> {
        if required && !path.exists() {
            return Err(ConfigError::Load(format!(
                "configuration file {} does not exist",
                path.display()
            )));
        }
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(path))
            .merge(Env::prefixed("LATCH_").ignore(&["config", "log", "log_format"]))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| ConfigError::Load(describe(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that deserialised but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| ConfigError::Invalid {
            field,
            message: message.to_owned(),
        };
        self.database_kind()?;
        if let Some(public) = &self.public_url {
            let url = url::Url::parse(public)
                .map_err(|e| invalid("public_url", &format!("not a URL ({e})")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(invalid(
                    "public_url",
                    "must be an http:// or https:// origin, like https://auth.example.com",
                ));
            }
            if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
                return Err(invalid(
                    "public_url",
                    "must be an origin with an optional path (no user, query or fragment), \
                     like https://example.com/auth",
                ));
            }
        }
        if let Some(smtp) = &self.smtp_url {
            let url = url::Url::parse(smtp)
                .map_err(|e| invalid("smtp_url", &format!("not a URL ({e})")))?;
            if !matches!(url.scheme(), "smtp" | "smtps") {
                return Err(invalid("smtp_url", "must start with smtp:// or smtps://"));
            }
        }
        if let Err(e) = self.mail_from.parse::<lettre::message::Mailbox>() {
            return Err(invalid("mail_from", &format!("not a mail address ({e})")));
        }
        for proxy in &self.trusted_proxies {
            if crate::domain::client_ip::IpRange::parse(proxy).is_none() {
                return Err(invalid(
                    "trusted_proxies",
                    &format!("{proxy:?} is not an IP address or CIDR range"),
                ));
            }
        }
        for role in self
            .require_mfa_roles
            .iter()
            .filter(|r| r.as_str() != "user")
        {
            if let Err(e) = crate::domain::RoleName::parse(role) {
                return Err(invalid(
                    "require_mfa_roles",
                    &format!("{role:?} is not a role name ({e})"),
                ));
            }
        }
        if self.argon2_iterations < argon2::Params::MIN_T_COST {
            return Err(invalid("argon2_iterations", "must be at least 1"));
        }
        if !(argon2::Params::MIN_P_COST..=255).contains(&self.argon2_parallelism) {
            return Err(invalid("argon2_parallelism", "must be between 1 and 255"));
        }
        if self.argon2_memory_kib < 8 * self.argon2_parallelism {
            return Err(invalid(
                "argon2_memory_kib",
                "must be at least 8 × argon2_parallelism (KiB)",
            ));
        }
        if self.argon2_memory_kib > 1024 * 1024 {
            return Err(invalid(
                "argon2_memory_kib",
                "must be at most 1048576 (1 GiB)",
            ));
        }
        for (field, value) in [
            ("session_idle_timeout_secs", self.session_idle_timeout_secs),
            (
                "session_absolute_timeout_secs",
                self.session_absolute_timeout_secs,
            ),
            ("remember_me_secs", self.remember_me_secs),
            ("throttle_account_failures", self.throttle_account_failures),
            ("throttle_ip_failures", self.throttle_ip_failures),
            ("throttle_window_secs", self.throttle_window_secs),
            (
                "throttle_ip_signups_per_hour",
                self.throttle_ip_signups_per_hour,
            ),
            (
                "throttle_ip_mail_requests_per_hour",
                self.throttle_ip_mail_requests_per_hour,
            ),
            (
                "throttle_address_mails_per_hour",
                self.throttle_address_mails_per_hour,
            ),
            (
                "throttle_ip_passkey_starts_per_minute",
                self.throttle_ip_passkey_starts_per_minute,
            ),
        ] {
            if value <= 0 {
                return Err(invalid(field, "must be a positive number"));
            }
        }
        if self.db_acquire_timeout_secs == 0 {
            return Err(invalid("db_acquire_timeout_secs", "must be at least 1"));
        }
        for (field, value) in [
            ("header_timeout_secs", self.header_timeout_secs),
            ("keepalive_timeout_secs", self.keepalive_timeout_secs),
            ("request_timeout_secs", self.request_timeout_secs),
        ] {
            if !(1..=MAX_TIMEOUT_SECS).contains(&value) {
                return Err(invalid(field, "must be between 1 and 86400 seconds"));
            }
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(invalid("max_connections", "must be between 1 and 1000000"));
        }
        if self.session_cache_ms > MAX_SESSION_CACHE_MS {
            return Err(invalid(
                "session_cache_ms",
                "must be between 0 (off) and 60000 (a minute)",
            ));
        }
        self.metrics_bind()?;
        self.access_rules()?;
        for domain in &self.redirect_domains {
            if !is_domain_name(domain.trim().trim_start_matches('.')) {
                return Err(invalid(
                    "redirect_domains",
                    &format!("{domain:?} is not a domain name (write IDNs in xn-- form)"),
                ));
            }
        }
        if let Some(domain) = &self.cookie_domain {
            let domain = domain.trim().trim_start_matches('.').to_ascii_lowercase();
            if !is_domain_name(&domain) || !domain.contains('.') {
                return Err(invalid(
                    "cookie_domain",
                    "must be a domain name with a dot, like example.com",
                ));
            }
            let public_host = self
                .public_url
                .as_deref()
                .and_then(|u| url::Url::parse(u).ok())
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
            if let Some(host) = public_host {
                if host != domain && !host.ends_with(&format!(".{domain}")) {
                    return Err(invalid(
                        "cookie_domain",
                        &format!(
                            "public_url's host {host} is not {domain} or under it, so browsers \
                             would refuse the cookie"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The compiled forward-auth rules; the error names the first bad rule.
    pub fn access_rules(&self) -> Result<crate::domain::access::AccessRules, ConfigError> {
        crate::domain::access::AccessRules::compile(&self.access_rules, &self.default_policy)
            .map_err(ConfigError::Rule)
    }

    /// `cookie_domain` as the cookie carries it (lower case, no leading dot).
    pub fn cookie_domain(&self) -> Option<String> {
        self.cookie_domain
            .as_deref()
            .map(|d| d.trim().trim_start_matches('.').to_ascii_lowercase())
            .filter(|d| !d.is_empty())
    }

    /// Where `/metrics` is served; an error names `metrics_bind` when it is not `off`, not
    /// an address, or the main address itself.
    pub fn metrics_bind(&self) -> Result<MetricsBind, ConfigError> {
        let Some(raw) = self.metrics_bind.as_deref().map(str::trim) else {
            return Ok(MetricsBind::Main);
        };
        if raw.eq_ignore_ascii_case("off") {
            return Ok(MetricsBind::Off);
        }
        let addr: SocketAddr = raw.parse().map_err(|_| ConfigError::Invalid {
            field: "metrics_bind",
            message: format!(
                "{raw:?} is not \"off\" or an address with a port, like 127.0.0.1:9100"
            ),
        })?;
        if addr == self.bind && addr.port() != 0 {
            return Err(ConfigError::Invalid {
                field: "metrics_bind",
                message: "must differ from bind (leave it unset to serve /metrics there)".into(),
            });
        }
        Ok(MetricsBind::Addr(addr))
    }

    /// Which database the URL names.
    pub fn database_kind(&self) -> Result<DatabaseKind, ConfigError> {
        let url = self.database_url.as_str();
        if url.starts_with("sqlite:") {
            Ok(DatabaseKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseKind::Postgres)
        } else {
            Err(ConfigError::Invalid {
                field: "database_url",
                message: "must start with sqlite:// or postgres://".into(),
            })
        }
    }

    /// The path of `public_url` without its trailing slash: `""` for `https://example.com`,
    /// `/auth` for `https://example.com/auth/`. latch's pages, links and redirects live under it.
    pub fn base_path(&self) -> String {
        self.public_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default()
    }

    /// Where passkeys are bound: the relying-party id (the host of `public_url`) and the
    /// origin (`public_url` without its path). `Err` says in one line why passkeys are off:
    /// WebAuthn scopes credentials to a domain name, so an IP address cannot be one.
    pub fn passkey_relying_party(&self) -> Result<(String, url::Url), String> {
        let public = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.bind));
        let url = url::Url::parse(&public).map_err(|e| format!("public_url is not a URL ({e})"))?;
        match url.host() {
            Some(url::Host::Domain(domain)) => {
                let origin = url::Url::parse(&url.origin().ascii_serialization())
                    .map_err(|e| format!("public_url has no origin ({e})"))?;
                Ok((domain.to_ascii_lowercase(), origin))
            }
            Some(_) => Err(format!(
                "passkeys are off: public_url {public} has an IP address as its host, and \
                 passkeys need a domain name (use http://localhost:{} for development)",
                url.port_or_known_default().unwrap_or(80)
            )),
            None => Err(format!("passkeys are off: public_url {public} has no host")),
        }
    }

    /// Whether cookies must be `Secure` and `__Host-` prefixed.
    ///
    /// Asked on every response and every session cookie, so it compares in place rather
    /// than lowercasing a copy of the URL.
    pub fn is_https(&self) -> bool {
        self.public_url
            .as_deref()
            .and_then(|u| u.get(..8))
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    }

    /// The configuration as `key = value` lines with every secret masked.
    pub fn to_masked_toml(&self) -> String {
        let mut masked = self.clone();
        masked.database_url = mask_url(&masked.database_url);
        masked.smtp_url = masked.smtp_url.as_deref().map(mask_url);
        toml_string(&masked)
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_masked_toml())
    }
}

fn toml_string(config: &Config) -> String {
    // figment already depends on `toml`; going through its Value keeps the output valid TOML.
    match figment::value::Value::serialize(config) {
        Ok(value) => render_value(&value),
        Err(e) => format!("# could not render configuration: {e}"),
    }
}

fn render_value(value: &figment::value::Value) -> String {
    use figment::value::Value;
    let mut out = String::new();
    if let Value::Dict(_, dict) = value {
        for (key, v) in dict {
            let rendered = match v {
                Value::String(_, s) => format!("{s:?}"),
                Value::Bool(_, b) => b.to_string(),
                Value::Num(_, n) => n
                    .to_u128()
                    .map(|u| u.to_string())
                    .or_else(|| n.to_i128().map(|i| i.to_string()))
                    .or_else(|| n.to_f64().map(|f| f.to_string()))
                    .unwrap_or_default(),
                Value::Empty(_, _) => "# not set".into(),
                Value::Array(_, items) => {
                    let items: Vec<String> = items
                        .iter()
                        .map(|v| match v {
                            Value::String(_, s) => format!("{s:?}"),
                            other => format!("{other:?}"),
                        })
                        .collect();
                    format!("[{}]", items.join(", "))
                }
                other => format!("{other:?}"),
            };
            if rendered.starts_with('#') {
                out.push_str(&format!("# {key} = (not set)\n"));
            } else {
                out.push_str(&format!("{key} = {rendered}\n"));
            }
        }
    }
    out
}

/// A figment error for a person: the setting, what is wrong, and which layer said it (not
/// the Rust source location figment records for values given as flags).
fn describe(errors: figment::Error) -> String {
    errors
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = e
                .metadata
                .as_ref()
                .map(|m| m.name.to_string())
                .filter(|name| !name.contains("::"))
                .unwrap_or_else(|| "command-line flags".into());
            if key.is_empty() {
                format!("{} (from {source})", e.kind)
            } else {
                format!("{key}: {} (from {source})", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Letters, digits and `-` in dot-separated labels.
fn is_domain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A list given as a TOML array or as one comma-separated string (environment variables).
fn list_or_csv<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::List(list) => list,
        Raw::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// Replaces the secrets of a URL with `****`: the password of the userinfo and the value of
/// every query parameter whose name looks like a secret (`password`, `sslpassword`, `token`…;
/// see [`is_secret_param`]). A value that does not parse as a URL but may hide a password
/// (it has an `@` or a query) is masked whole after its scheme.
pub fn mask_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        if raw.contains('@') || raw.contains('?') {
            let scheme = raw.split_once("://").map_or("", |(scheme, _)| scheme);
            return format!("{scheme}://****");
        }
        return raw.to_owned();
    };
    let mut changed = false;
    if url.password().is_some() {
        let _ = url.set_password(Some("****"));
        changed = true;
    }
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if pairs.iter().any(|(key, _)| is_secret_param(key)) {
        let masked = pairs.into_iter().map(|(key, value)| {
            let value = if is_secret_param(&key) {
                "****".to_owned()
            } else {
                value
            };
            (key, value)
        });
        url.query_pairs_mut().clear().extend_pairs(masked);
        changed = true;
    }
    // An unchanged URL is printed as given (parsing would re-encode spaces and the like).
    if changed {
        url.to_string()
    } else {
        raw.to_owned()
    }
}

/// Whether a URL query parameter carries a secret (libpq's `password` and `sslpassword`, and
/// anything named like a password, token, secret or key passphrase).
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "credential", "auth"]
        .iter()
        .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn secrets_are_masked() {
        let config = Config {
            database_url: "postgres://app:hunter2@db/latch".into(),
            smtp_url: Some("smtp://mailer:s3cret@mail:587".into()),
            ..Config::default()
        };
        let text = config.to_masked_toml();
        assert!(
            !text.contains("hunter2") && !text.contains("s3cret"),
            "{text}"
        );
        assert!(text.contains("****"));
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn secret_query_parameters_are_masked() {
        let masked = mask_url(
            "postgres://app@db/latch?sslmode=require&password=hunter2&sslpassword=k3y&PassWord=x9",
        );
        for secret in ["hunter2", "k3y", "x9"] {
            assert!(!masked.contains(secret), "{masked}");
        }
        assert!(masked.contains("sslmode=require"), "{masked}");
        assert!(masked.contains("password=****"), "{masked}");
        let both = mask_url("postgres://app:pw1@db/latch?password=pw2");
        assert!(!both.contains("pw1") && !both.contains("pw2"), "{both}");
        assert_eq!(mask_url("sqlite://latch.db"), "sqlite://latch.db");
        assert_eq!(
            mask_url("postgres://db/latch?sslmode=require"),
            "postgres://db/latch?sslmode=require"
        );
        assert_eq!(
            mask_url("postgres://a:b@[bad/x?password=y"),
            "postgres://****"
        );
    }

    #[test]
    fn numbers_are_printed_and_errors_name_the_setting() {
        let text = Config::default().to_masked_toml();
        assert!(text.contains("argon2_memory_kib = 19456"), "{text}");
        let config = Config {
            argon2_iterations: 0,
            ..Config::default()
        };
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("argon2_iterations"));
        let config = Config {
            argon2_memory_kib: 4,
            ..Config::default()
        };
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("argon2_memory_kib"));
    }

    #[test]
    fn the_passkey_start_limit_must_be_positive() {
        for bad in [0, -1] {
            let config = Config {
                throttle_ip_passkey_starts_per_minute: bad,
                ..Config::default()
            };
            let error = config.validate().unwrap_err().to_string();
            assert!(
                error.contains("throttle_ip_passkey_starts_per_minute")
                    && error.contains("must be a positive number"),
                "{error}"
            );
        }
    }

    #[test]
    fn connection_limits_are_checked() {
        for config in [
            Config {
                header_timeout_secs: 0,
                ..Config::default()
            },
            Config {
                keepalive_timeout_secs: u64::MAX,
                ..Config::default()
            },
            Config {
                request_timeout_secs: 0,
                ..Config::default()
            },
            Config {
                max_connections: 0,
                ..Config::default()
            },
            Config {
                session_cache_ms: 60_001,
                ..Config::default()
            },
        ] {
            assert!(config.validate().is_err());
        }
    }

    #[test]
    fn metrics_bind_is_main_off_or_an_address() {
        let with = |v: Option<&str>| Config {
            metrics_bind: v.map(str::to_owned),
            ..Config::default()
        };
        assert_eq!(with(None).metrics_bind().unwrap(), MetricsBind::Main);
        assert_eq!(with(Some("OFF")).metrics_bind().unwrap(), MetricsBind::Off);
        assert_eq!(
            with(Some("127.0.0.1:9100")).metrics_bind().unwrap(),
            MetricsBind::Addr("127.0.0.1:9100".parse().unwrap())
        );
        for bad in ["", "localhost", "127.0.0.1", "127.0.0.1:8080"] {
            let error = with(Some(bad)).validate().unwrap_err().to_string();
            assert!(error.contains("metrics_bind"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn bad_database_url_is_refused() {
        let config = Config {
            database_url: "mysql://x".into(),
            ..Config::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn public_url_must_be_http() {
        let config = Config {
            public_url: Some("ftp://x".into()),
            ..Config::default()
        };
        assert!(config.validate().is_err());
        let config = Config {
            public_url: Some("https://auth.example.com".into()),
            ..Config::default()
        };
        assert!(config.validate().is_ok() && config.is_https());
        assert_eq!(config.base_path(), "");
    }

    #[test]
    fn https_is_read_from_the_scheme_in_any_case() {
        let with = |u: Option<&str>| Config {
            public_url: u.map(str::to_owned),
            ..Config::default()
        };
        assert!(with(Some("https://a.example")).is_https());
        assert!(with(Some("HTTPS://a.example")).is_https());
        assert!(!with(Some("http://a.example")).is_https());
        assert!(!with(Some("http:")).is_https());
        assert!(!with(Some("é")).is_https());
        assert!(!with(None).is_https());
    }

    #[test]
    fn passkeys_need_a_domain_name() {
        let with = |u: &str| Config {
            public_url: Some(u.into()),
            ..Config::default()
        };
        let (rp, origin) = with("https://auth.example.com/auth/")
            .passkey_relying_party()
            .unwrap();
        assert_eq!(rp, "auth.example.com");
        assert_eq!(origin.as_str(), "https://auth.example.com/");
        let (rp, origin) = with("http://localhost:8080")
            .passkey_relying_party()
            .unwrap();
        assert_eq!(
            (rp.as_str(), origin.as_str()),
            ("localhost", "http://localhost:8080/")
        );
        for ip in ["http://127.0.0.1:8080", "http://[::1]:8080/auth"] {
            let off = with(ip).passkey_relying_party().unwrap_err();
            assert!(off.contains("IP address"), "{off}");
        }
        // Unset, it follows `bind` (127.0.0.1:8080 by default): off, with the reason.
        assert!(Config::default().passkey_relying_party().is_err());
    }

    #[test]
    fn public_url_path_is_the_base_path() {
        let config = Config {
            public_url: Some("https://example.com/auth/".into()),
            ..Config::default()
        };
        assert!(config.validate().is_ok());
        assert_eq!(config.base_path(), "/auth");
        for bad in [
            "https://example.com/auth?x=1",
            "https://example.com/#x",
            "https://u@example.com",
        ] {
            let config = Config {
                public_url: Some(bad.into()),
                ..Config::default()
            };
            assert!(config.validate().is_err(), "{bad}");
        }
    }
}
