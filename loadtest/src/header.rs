//! Run-wide request headers (`--header 'Name: value'`): checked once when parsed, added to every
//! request of the mix (replacing the request's own header of that name), and never shown when
//! their value could be secret.

use std::ffi::OsStr;

use stack::validate::{API_KEY_REFERENCE, GENERATOR_HEADERS};

use crate::scenario::Request;

/// One `--header`: a name HTTP allows that the generator does not write itself, and a value a
/// header can carry. Only built by [`Header::parse`], so every `Header` is valid.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    name: String,
    value: String,
}

/// Header names whose values are credentials.
const SECRET_NAMES: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

impl Header {
    /// Parses `Name: value` (curl's and oha's `-H` form; the value's surrounding spaces dropped).
    /// Errors name the header and the fix, never the value.
    pub fn parse(text: &str) -> Result<Header, String> {
        let Some((name, value)) = text.split_once(':') else {
            return Err("--header takes `Name: value`, e.g. --header 'X-Canary: green'".into());
        };
        let token =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if name.contains(char::is_whitespace) {
            // The "name" may be a credential missing its colon (`Cookie session=…:…`): not shown.
            return Err("--header: the name holds a space; write `Name: value`, e.g. --header 'X-Canary: green'".into());
        }
        if !token {
            return Err(format!(
                "--header {name:?} is not a header name: letters, digits and -, then a colon, e.g. --header 'X-Canary: green'"
            ));
        }
        let lower = name.to_ascii_lowercase();
        if lower == "host" {
            return Err(
                "--header Host: the load generator writes Host itself, from --host: give the URL of the virtual host to --host instead".into(),
            );
        }
        if GENERATOR_HEADERS.contains(&lower.as_str()) {
            return Err(format!(
                "--header {name}: the load generator writes {name} itself (it frames every request): drop it"
            ));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.chars().any(|ch| ch.is_control() && ch != '\t') {
            return Err(format!(
                "--header {name}: the value holds a line break or control character, which a header cannot carry"
            ));
        }
        if value.replace(API_KEY_REFERENCE, "").contains("${") {
            return Err(format!(
                "--header {name}: only {API_KEY_REFERENCE} is replaced (by the API key from the environment): write other values as they are"
            ));
        }
        Ok(Header { name: name.to_owned(), value: value.to_owned() })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// As written: `${API_KEY}` is still a reference, which the engine fills in.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The flag's argument that reads back as this header: `Name: value`.
    pub fn to_arg(&self) -> String {
        format!("{}: {}", self.name, self.value)
    }

    /// Whether the value could be a credential: a credential's header, or a value holding the
    /// API key itself (`api_key`).
    pub fn is_secret(&self, api_key: Option<&str>) -> bool {
        SECRET_NAMES.contains(&self.name.to_ascii_lowercase().as_str())
            || api_key.is_some_and(|key| !key.is_empty() && self.value.contains(key))
    }
}

/// Shows the value only when it cannot be secret (the API key read from the environment).
impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = std::env::var("API_KEY").ok();
        let value = if self.is_secret(key.as_deref()) { "(secret)" } else { self.value.as_str() };
        write!(f, "Header({}: {value})", self.name)
    }
}

/// `requests` with `headers` added to each: a request's own header of a name given is replaced
/// (the command line wins, as curl's and oha's `-H` replace the tool's own); repeated names are
/// all sent.
pub fn apply(requests: &mut [Request], headers: &[Header]) {
    if headers.is_empty() {
        return;
    }
    for r in requests {
        r.headers.retain(|(name, _)| !headers.iter().any(|h| h.name.eq_ignore_ascii_case(name)));
        r.headers.extend(headers.iter().map(|h| (h.name.clone(), h.value.clone())));
    }
}

/// `--header`'s parser: its errors are `Header::parse`'s, without the argument that clap's own
/// message would repeat (a credential, perhaps).
#[derive(Debug, Clone, Copy)]
pub struct HeaderParser;

impl clap::builder::TypedValueParser for HeaderParser {
    type Value = Header;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let fail = |message: String| {
            let mut cmd = cmd.clone();
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{message}\n")).format(&mut cmd)
        };
        let text = value.to_str().ok_or_else(|| fail("--header: the header is not UTF-8 text".into()))?;
        Header::parse(text).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        Header::parse(text).expect_err(text)
    }

    #[test]
    fn parses_name_and_value_as_curl_writes_them() {
        let h = Header::parse("X-Canary:  green ").expect("header");
        assert_eq!((h.name(), h.value(), h.to_arg().as_str()), ("X-Canary", "green", "X-Canary: green"));
        assert_eq!(Header::parse(&h.to_arg()), Ok(h), "reads back");
        let h = Header::parse("X-Empty:").expect("an empty value is a value");
        assert_eq!(h.value(), "");
        let h = Header::parse("Authorization: Bearer ${API_KEY}").expect("a reference to the key");
        assert_eq!(h.value(), "Bearer ${API_KEY}");
        assert_eq!(Header::parse("X-Time: 12:30").map(|h| h.value().to_owned()), Ok("12:30".into()));
    }

    #[test]
    fn bad_headers_are_refused_with_the_fix_and_without_the_value() {
        let secret = "s3cr3t-v4lue";
        for (text, says) in [
            (format!("Authorization {secret}"), "--header takes `Name: value`"),
            (format!("X Canary: {secret}"), "--header: the name holds a space; write `Name: value`"),
            (format!("Cookie session={secret}:x"), "the name holds a space"),
            (format!(": {secret}"), "\"\" is not a header name"),
            (format!("X-Ä: {secret}"), "is not a header name"),
            (format!("Host: {secret}"), "writes Host itself, from --host: give the URL of the virtual host to --host"),
            (format!("host: {secret}"), "writes Host itself"),
            (
                format!("Content-Length: {secret}"),
                "--header Content-Length: the load generator writes Content-Length itself (it frames every request): drop it",
            ),
            (format!("transfer-encoding: {secret}"), "writes transfer-encoding itself"),
            (format!("Connection: {secret}"), "writes Connection itself"),
            (format!("X-A: {secret}\r\nX-B: 1"), "--header X-A: the value holds a line break"),
            (format!("X-A: {secret}\n"), "line break"),
            (format!("X-A: {secret}\u{7}"), "control character"),
            (format!("X-A: ${{HOME}}{secret}"), "only ${API_KEY} is replaced"),
        ] {
            let e = refused(&text);
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(!e.contains(secret), "the value is never shown: {e}");
        }
        assert!(Header::parse("X-Tab: a\tb").is_ok(), "a tab is allowed inside a value");
    }

    #[test]
    fn credentials_and_the_key_are_secret_and_not_shown() {
        let key = "key-0123456789";
        for (text, secret) in [
            ("Authorization: Basic abc", true),
            ("proxy-authorization: x", true),
            ("Cookie: session=1", true),
            ("X-Api: key-0123456789", true),
            ("X-Api: Bearer ${API_KEY}", false),
            ("X-Canary: green", false),
        ] {
            assert_eq!(Header::parse(text).expect(text).is_secret(Some(key)), secret, "{text}");
        }
        let shown = format!("{:?}", Header::parse("Cookie: session=abc").expect("header"));
        assert_eq!(shown, "Header(Cookie: (secret))");
        assert_eq!(format!("{:?}", Header::parse("X-Canary: green").expect("header")), "Header(X-Canary: green)");
    }

    #[test]
    fn every_request_gets_the_headers_and_the_command_line_wins() {
        let mut requests = crate::scenario::Mix::Endpoints(crate::scenario::default_mix()).requests().expect("mix");
        let headers = [
            Header::parse("X-Canary: green").expect("header"),
            Header::parse("authorization: Bearer other").expect("header"),
        ];
        apply(&mut requests, &headers);
        for r in &requests {
            let canary: Vec<&str> =
                r.headers.iter().filter(|(n, _)| n == "X-Canary").map(|(_, v)| v.as_str()).collect();
            assert_eq!(canary, ["green"], "{}", r.name);
            let auth: Vec<&str> = r
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(auth, ["Bearer other"], "{}: the flag replaces the mix's own", r.name);
        }
    }
}
