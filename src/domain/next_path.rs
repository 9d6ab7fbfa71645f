use percent_encoding::percent_decode_str;

/// A redirect target that stays on this site (docs/http-api.md's "safe next" rule): after repeated
/// percent-decoding it is printable ASCII, starts with exactly one `/`, and holds no `//`, no
/// `\`, no `.` or `..` segment, no scheme and no control character.
///
/// ```
/// use latch::domain::NextPath;
/// assert_eq!(NextPath::parse("/posts/3?tab=edit").unwrap().as_str(), "/posts/3?tab=edit");
/// assert!(NextPath::parse("//evil.example").is_none());
/// assert!(NextPath::parse("/%5Cevil.example").is_none());
/// assert_eq!(NextPath::or_dashboard(Some("https:evil.example"), "").as_str(), "/dashboard");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextPath(String);

const MAX_LEN: usize = 2048;

impl NextPath {
    /// The safe path, or `None`.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() > MAX_LEN {
            return None;
        }
        // Decode until a fixed point, so that no layer of encoding can hide a `//` or `\`.
        let mut decoded = raw.to_owned();
        for _ in 0..10 {
            let next = percent_decode_str(&decoded)
                .decode_utf8()
                .ok()?
                .into_owned();
            if next == decoded {
                break;
            }
            decoded = next;
        }
        if percent_decode_str(&decoded).decode_utf8().ok()? != decoded {
            return None;
        }
        let printable = decoded.bytes().all(|b| (0x21..=0x7e).contains(&b));
        if !printable || !decoded.starts_with('/') || decoded.starts_with("//") {
            return None;
        }
        if decoded.contains("//") || decoded.contains('\\') {
            return None;
        }
        let path = decoded.split(['?', '#']).next().unwrap_or_default();
        if path.contains(':') {
            return None;
        }
        if path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
        {
            return None;
        }
        Some(Self(decoded))
    }

    /// A safe local path, or an absolute URL back to an application under one of
    /// `returns`' domains (see [`ReturnDomains`]).
    pub fn parse_with(raw: &str, returns: &ReturnDomains) -> Option<Self> {
        Self::parse(raw).or_else(|| returns.absolute(raw).map(Self))
    }

    /// [`NextPath::or_dashboard`] that also accepts absolute URLs under `returns`' domains.
    pub fn or_dashboard_with(raw: Option<&str>, base: &str, returns: &ReturnDomains) -> Self {
        raw.and_then(|r| Self::parse_with(r, returns))
            .unwrap_or_else(|| Self(format!("{base}/dashboard")))
    }

    /// The safe path, or the dashboard (under `base`, the prefix of latch's pages, which comes
    /// from the configuration or the application, never from the request) when `raw` is
    /// missing or unsafe.
    pub fn or_dashboard(raw: Option<&str>, base: &str) -> Self {
        raw.and_then(Self::parse)
            .unwrap_or_else(|| Self(format!("{base}/dashboard")))
    }

    /// The path to put in `Location`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The applications a sign-in may return to (`redirect_domains`): an absolute `next` is
/// accepted only with the scheme latch itself is served on (`https`, or `http` when
/// `public_url` is http) and a host that is one of the domains or a subdomain of one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnDomains {
    domains: Vec<String>,
    allow_http: bool,
}

impl ReturnDomains {
    /// `domains` as configured (case and a leading `.` ignored); `allow_http` when latch is
    /// served over http.
    pub fn new(domains: &[String], allow_http: bool) -> Self {
        let domains = domains
            .iter()
            .map(|d| {
                d.trim()
                    .trim_start_matches('.')
                    .trim_end_matches('.')
                    .to_ascii_lowercase()
            })
            .filter(|d| !d.is_empty())
            .collect();
        Self {
            domains,
            allow_http,
        }
    }

    /// `raw` when it is a safe absolute URL under one of the domains. Besides the host, every
    /// rule of a safe local path holds for what follows it: printable ASCII only (so IDN
    /// look-alikes must come in `xn--` form, which is compared as is), at any depth of
    /// percent-decoding no `\`, no control character, no `//` and no `.`/`..` segment in the
    /// path; and the authority is a bare host with an optional port (no user info, no
    /// encoding), so the host the browser goes to is the one checked here.
    fn absolute(&self, raw: &str) -> Option<String> {
        if self.domains.is_empty() || raw.len() > MAX_LEN {
            return None;
        }
        if !raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return None;
        }
        let rest = match raw.split_once("://")? {
            ("https", rest) => rest,
            ("http", rest) if self.allow_http => rest,
            _ => return None,
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        let port_ok = port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
        if !host_ok || !port_ok {
            return None;
        }
        let host = host.to_ascii_lowercase();
        let listed = self.domains.iter().any(|d| {
            host == *d
                || host
                    .strip_suffix(d.as_str())
                    .is_some_and(|sub| sub.ends_with('.'))
        });
        if !listed {
            return None;
        }
        if !tail.is_empty() && !tail.starts_with('/') {
            // `?x` or `#x` right after the host: the path is `/`.
            return Self::tail_is_safe(&format!("/{tail}")).then(|| raw.to_owned());
        }
        Self::tail_is_safe(if tail.is_empty() { "/" } else { tail }).then(|| raw.to_owned())
    }

    /// The local-path rules on what follows the host.
    fn tail_is_safe(tail: &str) -> bool {
        let mut decoded = tail.to_owned();
        for _ in 0..10 {
            let Ok(next) = percent_decode_str(&decoded).decode_utf8() else {
                return false;
            };
            let next = next.into_owned();
            if next.contains('\\') || next.chars().any(char::is_control) {
                return false;
            }
            if next == decoded {
                break;
            }
            decoded = next;
        }
        if percent_decode_str(&decoded).decode_utf8().ok().as_deref() != Some(decoded.as_str()) {
            return false;
        }
        let path = decoded.split(['?', '#']).next().unwrap_or_default();
        !path.contains("//")
            && !path.contains(':')
            && !path
                .split('/')
                .any(|segment| segment == "." || segment == "..")
    }
}

#[cfg(test)]
mod tests {
    use super::{NextPath, ReturnDomains};

    #[test]
    fn hostile_values_never_leave_the_site() {
        let corpus = [
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/%5Cevil.example",
            "/%2F%2Fevil.example",
            "%2F%2Fevil.example",
            "https://evil.example",
            "https:evil.example",
            "javascript:alert(1)",
            "data:text/html,x",
            "/%09/evil.example",
            "/%0d%0aLocation:%20http://evil.example",
            " //evil.example",
            "//evil.example/%2F..",
            "/%252F%252Fevil.example",
            "/\t/evil.example",
            "/\r\n/evil.example",
            "/./evil",
            "/a/../../evil",
            "/javascript:alert(1)",
            "",
            "evil.example",
            "/%ff",
        ];
        for value in corpus {
            assert!(NextPath::parse(value).is_none(), "{value:?} was accepted");
            assert_eq!(
                NextPath::or_dashboard(Some(value), "").as_str(),
                "/dashboard"
            );
        }
    }

    #[test]
    fn local_paths_are_kept() {
        for value in [
            "/dashboard",
            "/posts/12/edit",
            "/account?tab=sessions",
            "/a.b/c",
        ] {
            assert_eq!(NextPath::parse(value).unwrap().as_str(), value);
        }
        assert_eq!(NextPath::parse("/posts%2F3").unwrap().as_str(), "/posts/3");
    }

    fn returns() -> ReturnDomains {
        ReturnDomains::new(&["example.com".into(), ".Apps.Test".into()], false)
    }

    #[test]
    fn absolute_urls_return_only_to_listed_domains() {
        for ok in [
            "https://example.com/",
            "https://example.com",
            "https://app.example.com/path?q=1#top",
            "https://a.b.example.com:8443/x",
            "https://APP.apps.test/x?next=%2Fy",
            "https://example.com?x=1",
        ] {
            assert_eq!(
                NextPath::parse_with(ok, &returns()).map(|n| n.as_str().to_owned()),
                Some(ok.to_owned()),
                "{ok}"
            );
        }
        let hostile = [
            "https://example.com.evil.test/",
            "https://evil.test/?example.com",
            "https://evil.test/#example.com",
            "https://evil.test/example.com",
            "https://example.com@evil.test/",
            "https://user:pw@example.com/",
            "https://evil.test\\@example.com/",
            "https://example.com\\evil.test",
            "https://example.com/\\evil.test",
            "https://example.com/%5C%5Cevil.test",
            "https://example.com//evil.test",
            "https://example.com/%2F%2Fevil.test",
            "https://example.com/a/../../x",
            "https://example.com/%2e%2e/x",
            "https://еxample.com/",
            "https://xn--xample-2of.com/",
            "https://exam%70le.com/",
            "https://notexample.com/",
            "https://example.com:/",
            "https://example.com:99999999/",
            "https://[::1]/",
            "http://example.com/",
            "HTTPS://example.com/",
            "javascript://example.com/%0aalert(1)",
            "//example.com/",
            "//evil.test",
            "https:/example.com/",
            "https:example.com",
            "https://example.com/%0d%0aSet-Cookie:x",
            "https://example.com/ x",
            "https://",
        ];
        for value in hostile {
            assert!(
                NextPath::parse_with(value, &returns()).is_none(),
                "{value:?} was accepted"
            );
        }
        // Without redirect_domains nothing absolute is accepted; http only when latch is http.
        let none = ReturnDomains::new(&[], false);
        assert!(NextPath::parse_with("https://example.com/", &none).is_none());
        let http = ReturnDomains::new(&["example.com".into()], true);
        assert!(NextPath::parse_with("http://app.example.com/", &http).is_some());
        assert_eq!(
            NextPath::or_dashboard_with(Some("https://evil.test/"), "/sso", &returns()).as_str(),
            "/sso/dashboard"
        );
    }
}

/// Property tests: whatever the input, the resolved redirect stays on the origin.
#[cfg(test)]
mod properties {
    use super::NextPath;
    use proptest::prelude::*;
    use url::Url;

    /// Pieces that open redirects are made of, so generated inputs are hostile more often
    /// than uniformly random strings would be.
    fn hostile() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("/".to_owned()),
            Just("\\".to_owned()),
            Just("%2F".to_owned()),
            Just("%5C".to_owned()),
            Just("%252F".to_owned()),
            Just("%25".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just(":".to_owned()),
            Just("@".to_owned()),
            Just("?".to_owned()),
            Just("#".to_owned()),
            Just("%09".to_owned()),
            Just("%0d%0a".to_owned()),
            Just(" ".to_owned()),
            Just("\t".to_owned()),
            Just("https:".to_owned()),
            Just("javascript:".to_owned()),
            Just("evil.example".to_owned()),
            Just("%E3%80%82".to_owned()),
            Just("／".to_owned()),
            "[a-z0-9]{1,4}",
            any::<char>().prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..10).prop_map(|pieces| pieces.concat())
    }

    fn assert_same_origin(raw: &str) -> Result<(), TestCaseError> {
        let origin = Url::parse("https://latch.example:8443/some/page?x=1")
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let target = NextPath::or_dashboard(Some(raw), "");
        let resolved = origin
            .join(target.as_str())
            .map_err(|e| TestCaseError::fail(format!("{raw:?} -> {target:?}: {e}")))?;
        prop_assert_eq!(resolved.scheme(), "https", "{:?} -> {}", raw, resolved);
        prop_assert_eq!(
            resolved.host_str(),
            Some("latch.example"),
            "{:?} -> {}",
            raw,
            resolved
        );
        prop_assert_eq!(resolved.port(), Some(8443), "{:?} -> {}", raw, resolved);
        prop_assert!(resolved.username().is_empty() && resolved.password().is_none());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn hostile_next_stays_on_site(raw in hostile()) {
            assert_same_origin(&raw)?;
        }

        #[test]
        fn any_next_stays_on_site(raw in any::<String>()) {
            assert_same_origin(&raw)?;
        }

        #[test]
        fn accepted_paths_are_fixed_points(raw in hostile()) {
            if let Some(path) = NextPath::parse(&raw) {
                prop_assert_eq!(NextPath::parse(path.as_str()), Some(path.clone()));
            }
        }
    }
}
