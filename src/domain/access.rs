//! Access rules for forward-auth: which visitor may reach which URL of a protected application.
//!
//! Pure (no I/O), so the configuration check, the CLI's `access check` and the server all use
//! the same parser and matcher. Rules are compiled once at start into an index by domain: a
//! request only tries the rules whose domain can match its host (its exact host, then each
//! `*.` parent), so a thousand rules over many domains cost about what ten do.

use std::collections::HashMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// What a rule (or the default) asks of a visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Anyone, signed in or not.
    Bypass,
    /// Any signed-in visitor.
    OneFactor,
    /// A signed-in visitor whose session was made with a second factor.
    TwoFactor,
    /// Nobody.
    Deny,
}

impl Policy {
    /// Parses `bypass`, `one_factor`, `two_factor` or `deny`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "bypass" => Ok(Self::Bypass),
            "one_factor" => Ok(Self::OneFactor),
            "two_factor" => Ok(Self::TwoFactor),
            "deny" => Ok(Self::Deny),
            other => Err(format!(
                "unknown policy {other:?} (expected bypass, one_factor, two_factor or deny)"
            )),
        }
    }

    /// The configuration word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bypass => "bypass",
            Self::OneFactor => "one_factor",
            Self::TwoFactor => "two_factor",
            Self::Deny => "deny",
        }
    }
}

/// One `[[access_rules]]` entry as written in the configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RuleSpec {
    /// An exact host (`app.example.com`) or `*.example.com` (any subdomain, not the domain
    /// itself); a list matches any of them.
    #[serde(deserialize_with = "one_or_many")]
    pub domain: Vec<String>,
    /// A regular expression searched in the path and query (`^/api/` anchors it).
    pub path: Option<String>,
    /// Methods the rule covers (all when empty).
    #[serde(deserialize_with = "one_or_many")]
    pub methods: Vec<String>,
    /// `user:<name>` / `role:<name>`: the rule covers only the visitors it names.
    #[serde(deserialize_with = "one_or_many")]
    pub subject: Vec<String>,
    /// `bypass`, `one_factor`, `two_factor` or `deny`.
    pub policy: String,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(one) => vec![one],
        Raw::Many(many) => many,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    User(String),
    Role(String),
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its position in `access_rules` (0-based), to name it.
    pub index: usize,
    domains: Vec<String>,
    path: Option<Regex>,
    methods: Vec<String>,
    subjects: Vec<Subject>,
    /// What it asks.
    pub policy: Policy,
}

impl Rule {
    /// `access_rules[2] (domain = app.example.com, path = ^/admin, policy = deny)`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("domain = {}", self.domains.join(", "))];
        if let Some(path) = &self.path {
            parts.push(format!("path = {}", path.as_str()));
        }
        if !self.methods.is_empty() {
            parts.push(format!("methods = {}", self.methods.join(", ")));
        }
        if !self.subjects.is_empty() {
            let names: Vec<String> = self
                .subjects
                .iter()
                .map(|s| match s {
                    Subject::User(u) => format!("user:{u}"),
                    Subject::Role(r) => format!("role:{r}"),
                })
                .collect();
            parts.push(format!("subject = {}", names.join(", ")));
        }
        parts.push(format!("policy = {}", self.policy.as_str()));
        format!("access_rules[{}] ({})", self.index, parts.join(", "))
    }

    fn covers(&self, path_and_query: &str, method: &str) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m == method))
            && self
                .path
                .as_ref()
                .is_none_or(|re| re.is_match(path_and_query))
    }

    fn names(&self, visitor: &Visitor) -> bool {
        self.subjects.iter().any(|s| match s {
            Subject::User(name) => name.eq_ignore_ascii_case(&visitor.username),
            Subject::Role(role) => visitor.roles.iter().any(|r| r == role),
        })
    }
}

/// Who is asking: a signed-in visitor as forward-auth sees them.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// Username.
    pub username: String,
    /// Roles, including the implicit `user`.
    pub roles: Vec<String>,
    /// Whether the session was made with a second factor.
    pub two_factor: bool,
}

/// The request forward-auth decides on.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Host without port, any case.
    pub host: &'a str,
    /// Path and query, like `/a/b?c=d`.
    pub path_and_query: &'a str,
    /// Upper-case method.
    pub method: &'a str,
}

/// What forward-auth answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Let the request through.
    Allow,
    /// The visitor must sign in.
    SignIn,
    /// Signed in, but the policy needs a second factor this session lacks.
    SecondFactor,
    /// Refused whoever the visitor is.
    Forbidden,
}

impl Outcome {
    /// A word for people.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::SignIn => "sign in",
            Self::SecondFactor => "second factor needed",
            Self::Forbidden => "forbidden",
        }
    }
}

/// An outcome and the rule that gave it (`None`: the default policy).
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    /// The rule that matched.
    pub rule: Option<&'a Rule>,
    /// The policy applied.
    pub policy: Policy,
    /// The answer.
    pub outcome: Outcome,
}

/// Why a rule does not compile: one line naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("access_rules[{index}]: {field}: {message}")]
pub struct RuleError {
    /// Position in `access_rules`.
    pub index: usize,
    /// The key at fault.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// The compiled rules with their default, indexed by domain.
#[derive(Debug, Clone)]
pub struct AccessRules {
    rules: Vec<Rule>,
    default: Policy,
    /// Rules by exact host.
    exact: HashMap<String, Vec<usize>>,
    /// Rules by the parent of a `*.` domain (`example.com` for `*.example.com`).
    wildcard: HashMap<String, Vec<usize>>,
}

/// Largest compiled size of one path expression, so a rule cannot make start-up or memory blow up.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl AccessRules {
    /// Compiles `specs` in order, with `default_policy` for requests no rule matches.
    pub fn compile(specs: &[RuleSpec], default_policy: &str) -> Result<Self, String> {
        let default = Policy::parse(default_policy).map_err(|e| format!("default_policy: {e}"))?;
        let mut compiled = Self {
            rules: Vec::with_capacity(specs.len()),
            default,
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        };
        for (index, spec) in specs.iter().enumerate() {
            let rule = compile_rule(index, spec).map_err(|e| e.to_string())?;
            for domain in &rule.domains {
                match domain.strip_prefix("*.") {
                    Some(parent) => compiled.wildcard.entry(parent.to_owned()),
                    None => compiled.exact.entry(domain.clone()),
                }
                .or_default()
                .push(index);
            }
            compiled.rules.push(rule);
        }
        Ok(compiled)
    }

    /// No rules, `one_factor` for everything.
    pub fn empty() -> Self {
        Self {
            rules: Vec::new(),
            default: Policy::OneFactor,
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        }
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule that matches `request` for `visitor` (first match wins), else the
    /// default. A rule with a subject matches only the visitors it names: an anonymous visitor
    /// is asked to sign in when such a rule would otherwise match; a signed-in visitor it does
    /// not name goes on to the next rule.
    pub fn decide(&self, request: Request<'_>, visitor: Option<&Visitor>) -> Decision<'_> {
        let host = normalize_host(request.host);
        let mut candidates: Vec<usize> = self.exact.get(&host).cloned().unwrap_or_default();
        let mut rest = host.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(found) = self.wildcard.get(parent) {
                candidates.extend_from_slice(found);
            }
            rest = parent;
        }
        candidates.sort_unstable();
        candidates.dedup();
        for index in candidates {
            let rule = &self.rules[index];
            if !rule.covers(request.path_and_query, request.method) {
                continue;
            }
            if !rule.subjects.is_empty() {
                match visitor {
                    None => {
                        return Decision {
                            rule: Some(rule),
                            policy: rule.policy,
                            outcome: Outcome::SignIn,
                        }
                    }
                    Some(v) if !rule.names(v) => continue,
                    Some(_) => {}
                }
            }
            return Decision {
                rule: Some(rule),
                policy: rule.policy,
                outcome: apply(rule.policy, visitor),
            };
        }
        Decision {
            rule: None,
            policy: self.default,
            outcome: apply(self.default, visitor),
        }
    }
}

/// The outcome of `policy` for `visitor`. `deny` is 403 for everyone: signing in would not help.
fn apply(policy: Policy, visitor: Option<&Visitor>) -> Outcome {
    match (policy, visitor) {
        (Policy::Bypass, _) => Outcome::Allow,
        (Policy::Deny, _) => Outcome::Forbidden,
        (_, None) => Outcome::SignIn,
        (Policy::OneFactor, Some(_)) => Outcome::Allow,
        (Policy::TwoFactor, Some(v)) if v.two_factor => Outcome::Allow,
        (Policy::TwoFactor, Some(_)) => Outcome::SecondFactor,
    }
}

/// Lower case, without a trailing dot.
pub fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn compile_rule(index: usize, spec: &RuleSpec) -> Result<Rule, RuleError> {
    let error = |field, message: String| RuleError {
        index,
        field,
        message,
    };
    if spec.domain.is_empty() {
        return Err(error(
            "domain",
            "missing (an exact host or *.example.com)".into(),
        ));
    }
    let mut domains = Vec::new();
    for raw in &spec.domain {
        let domain = normalize_host(raw.trim());
        let bare = domain.strip_prefix("*.").unwrap_or(&domain);
        let valid = !bare.is_empty()
            && bare.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return Err(error(
                "domain",
                format!("{raw:?} is not a host name or *.domain (write IDNs in xn-- form)"),
            ));
        }
        domains.push(domain);
    }
    let path = match &spec.path {
        Some(raw) => Some(
            regex::RegexBuilder::new(raw)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    let first = e.to_string();
                    let line = first.lines().last().unwrap_or_default().trim().to_owned();
                    error("path", format!("regex parse error in {raw:?}: {line}"))
                })?,
        ),
        None => None,
    };
    let mut methods = Vec::new();
    for raw in &spec.methods {
        let method = raw.trim().to_ascii_uppercase();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(error("methods", format!("{raw:?} is not an HTTP method")));
        }
        methods.push(method);
    }
    let mut subjects = Vec::new();
    for raw in &spec.subject {
        let subject = match raw.trim().split_once(':') {
            Some(("user", name)) if !name.trim().is_empty() => {
                Subject::User(crate::domain::nfkc_lower(name.trim()))
            }
            Some(("role", name)) if !name.trim().is_empty() => {
                Subject::Role(name.trim().to_ascii_lowercase())
            }
            _ => {
                return Err(error(
                    "subject",
                    format!("{raw:?} is not user:<name> or role:<name>"),
                ))
            }
        };
        subjects.push(subject);
    }
    let policy = Policy::parse(&spec.policy).map_err(|e| error("policy", e))?;
    Ok(Rule {
        index,
        domains,
        path,
        methods,
        subjects,
        policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(domain: &str, path: Option<&str>, subject: &[&str], policy: &str) -> RuleSpec {
        RuleSpec {
            domain: vec![domain.into()],
            path: path.map(Into::into),
            methods: Vec::new(),
            subject: subject.iter().map(|s| s.to_string()).collect(),
            policy: policy.into(),
        }
    }

    fn get<'a>(host: &'a str, path: &'a str) -> Request<'a> {
        Request {
            host,
            path_and_query: path,
            method: "GET",
        }
    }

    fn visitor(name: &str, roles: &[&str], two_factor: bool) -> Visitor {
        Visitor {
            username: name.into(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            two_factor,
        }
    }

    #[test]
    fn first_match_wins_then_the_default() {
        let rules = AccessRules::compile(
            &[
                spec("app.example.com", Some("^/public"), &[], "bypass"),
                spec("*.example.com", Some("^/admin"), &[], "deny"),
                spec("*.example.com", None, &[], "two_factor"),
            ],
            "deny",
        )
        .unwrap();
        let alice = visitor("alice", &["user"], false);
        let d = rules.decide(get("APP.example.com.", "/public/x"), None);
        assert_eq!((d.rule.unwrap().index, d.outcome), (0, Outcome::Allow));
        let d = rules.decide(get("b.app.example.com", "/admin"), Some(&alice));
        assert_eq!((d.rule.unwrap().index, d.outcome), (1, Outcome::Forbidden));
        let d = rules.decide(get("app.example.com", "/x"), Some(&alice));
        assert_eq!(
            (d.rule.unwrap().index, d.outcome),
            (2, Outcome::SecondFactor)
        );
        // `*.example.com` does not cover example.com itself.
        let d = rules.decide(get("example.com", "/x"), Some(&alice));
        assert!(d.rule.is_none());
        assert_eq!(d.outcome, Outcome::Forbidden);
    }

    #[test]
    fn subjects_ask_anonymous_visitors_to_sign_in_and_skip_others() {
        let rules = AccessRules::compile(
            &[
                spec("a.test", None, &["role:admin", "user:bob"], "one_factor"),
                spec("a.test", None, &[], "deny"),
            ],
            "one_factor",
        )
        .unwrap();
        assert_eq!(
            rules.decide(get("a.test", "/"), None).outcome,
            Outcome::SignIn
        );
        let admin = visitor("carol", &["user", "admin"], false);
        assert_eq!(
            rules.decide(get("a.test", "/"), Some(&admin)).outcome,
            Outcome::Allow
        );
        let bob = visitor("Bob", &["user"], false);
        assert_eq!(
            rules.decide(get("a.test", "/"), Some(&bob)).outcome,
            Outcome::Allow
        );
        let eve = visitor("eve", &["user"], false);
        let d = rules.decide(get("a.test", "/"), Some(&eve));
        assert_eq!((d.rule.unwrap().index, d.outcome), (1, Outcome::Forbidden));
    }

    #[test]
    fn methods_and_queries_are_matched() {
        let mut only_post = spec("a.test", Some(r"\?token="), &[], "bypass");
        only_post.methods = vec!["post".into()];
        let rules = AccessRules::compile(&[only_post], "one_factor").unwrap();
        let post = Request {
            host: "a.test",
            path_and_query: "/hook?token=1",
            method: "POST",
        };
        assert_eq!(rules.decide(post, None).outcome, Outcome::Allow);
        assert_eq!(
            rules.decide(get("a.test", "/hook?token=1"), None).outcome,
            Outcome::SignIn
        );
    }

    #[test]
    fn bad_rules_are_named() {
        let bad_regex = [
            spec("a.test", None, &[], "bypass"),
            spec("b.test", Some("(["), &[], "bypass"),
        ];
        let e = AccessRules::compile(&bad_regex, "one_factor").unwrap_err();
        assert!(
            e.starts_with("access_rules[1]: path: regex parse error"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        let e = AccessRules::compile(&[spec("a.test", None, &[], "allow")], "deny").unwrap_err();
        assert!(
            e.starts_with("access_rules[0]: policy: unknown policy"),
            "{e}"
        );
        let e = AccessRules::compile(&[spec("a test", None, &[], "deny")], "deny").unwrap_err();
        assert!(e.starts_with("access_rules[0]: domain:"), "{e}");
        let e = AccessRules::compile(&[spec("a.test", None, &["group:x"], "deny")], "deny")
            .unwrap_err();
        assert!(e.starts_with("access_rules[0]: subject:"), "{e}");
        assert!(AccessRules::compile(&[], "maybe")
            .unwrap_err()
            .starts_with("default_policy:"));
    }

    #[test]
    fn a_thousand_rules_only_try_the_host_s_own() {
        let mut specs: Vec<RuleSpec> = (0..1000)
            .map(|i| spec(&format!("app{i}.example.com"), Some("^/x"), &[], "deny"))
            .collect();
        specs.push(spec("*.example.com", None, &[], "bypass"));
        let rules = AccessRules::compile(&specs, "deny").unwrap();
        let d = rules.decide(get("app999.example.com", "/y"), None);
        assert_eq!((d.rule.unwrap().index, d.outcome), (1000, Outcome::Allow));
        let d = rules.decide(get("app999.example.com", "/x"), None);
        assert_eq!(d.rule.unwrap().index, 999);
    }
}
