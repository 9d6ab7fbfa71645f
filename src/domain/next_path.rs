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

#[cfg(test)]
mod tests {
    use super::NextPath;

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
