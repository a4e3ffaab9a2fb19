//! The dashboard's actions (`remapctl monitor --http ADDR --actions`): start or stop a
//! target's background scan, add a spare to its pool. Off unless asked for: without
//! `--actions` the page has no forms and `POST /action` gets 405.
//!
//! A request to act must come from the dashboard's own page (cross-site request
//! forgery: any page the admin's browser shows can make it send a form to
//! 127.0.0.1):
//! - the page's forms carry a token the monitor draws from the kernel's random pool
//!   at start (32 bytes, hex) and never writes anywhere else; a request without it,
//!   or with another, gets 403 — another site can make the browser send a form, but
//!   cannot read the page to learn the token (the same-origin policy, and the server's
//!   refusal of a non-loopback `Host`: DNS rebinding);
//! - the request names its `Host`; an `Origin` header, when the browser sends one, must
//!   be this very server (`http://` and the same host and port), and `Sec-Fetch-Site`,
//!   when sent, must be `same-origin` or `none`;
//! - the pages carry headers that forbid framing them (`X-Frame-Options: DENY`, CSP
//!   `frame-ancestors 'none'`): a framed page's forms would carry the token;
//! - the body is `application/x-www-form-urlencoded`, at most 4 KiB.
//!
//! What is done, or refused and why, goes to the monitor's log (the journal) and the
//! page's recent events; the answer sends the browser back to the page (303).

use crate::dm::Dm;
use std::path::PathBuf;

/// The largest form body taken.
pub const BODY_MAX: usize = 4096;

/// A new token: 32 bytes from the kernel's random pool, as 64 hex digits.
pub fn new_token() -> Result<String, String> {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("cannot read /dev/urandom for the actions' token: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Whether two tokens are equal, in a time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `%XX` and `+` decoding of one form field; `None` for a bad escape or bytes that
/// are not UTF-8.
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The fields of a form body (`a=1&b=2`), decoded; `None` when one does not decode.
pub fn parse_form(body: &str) -> Option<Vec<(String, String)>> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

/// What a form asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Act {
    /// `scan start`.
    ScanStart,
    /// `scan stop`.
    ScanStop,
    /// `remapctl spare-add` of this device.
    SpareAdd(PathBuf),
}

/// A request to act, checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// The target.
    pub target: String,
    /// The action.
    pub act: Act,
}

/// Why a request is refused: the HTTP status and the reason.
pub type Refusal = (&'static str, String);

/// The headers that matter to an action.
#[derive(Debug, Default)]
pub struct Headers {
    /// `Host`, if sent.
    pub host: Option<String>,
    /// `Origin`, if sent.
    pub origin: Option<String>,
    /// `Sec-Fetch-Site`, if sent.
    pub fetch_site: Option<String>,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
}

/// Checks a request to act against the token; what it asks for, or why not.
pub fn check(h: &Headers, body: &str, token: &str) -> Result<Request, Refusal> {
    const FORBIDDEN: &str = "403 Forbidden";
    const BAD: &str = "400 Bad Request";
    // The request must name this server (a loopback Host is checked before), and a
    // browser's Origin must be this very server: the same host and port.
    let Some(host) = h.host.as_deref().filter(|v| crate::http::host_ok(v)) else {
        return Err(("400 Bad Request", "no Host header".into()));
    };
    if let Some(o) = &h.origin {
        let from = o.strip_prefix("http://");
        if !from.is_some_and(|f| f.eq_ignore_ascii_case(host)) {
            return Err((FORBIDDEN, format!("a request from origin {o:?} is refused")));
        }
    }
    if let Some(s) = &h.fetch_site {
        if s != "same-origin" && s != "none" {
            return Err((FORBIDDEN, format!("a {s} request is refused")));
        }
    }
    let ct = h.content_type.as_deref().unwrap_or("");
    if !ct.split(';').next().is_some_and(|t| {
        t.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    }) {
        return Err((
            "415 Unsupported Media Type",
            "a form (application/x-www-form-urlencoded) is expected".into(),
        ));
    }
    let form = parse_form(body).ok_or((BAD, "the form does not decode".to_string()))?;
    let field = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    if !field("token").is_some_and(|t| same(t, token)) {
        return Err((FORBIDDEN, "bad or missing token".into()));
    }
    let target = field("target")
        .filter(|t| !t.is_empty())
        .ok_or((BAD, "no target".to_string()))?;
    crate::dm::check_name(target).map_err(|e| (BAD, e))?;
    let act = match field("do") {
        Some("scan-start") => Act::ScanStart,
        Some("scan-stop") => Act::ScanStop,
        Some("spare-add") => {
            let d = field("device").unwrap_or("").trim();
            if !d.starts_with("/dev/") || d.split('/').any(|c| c == "..") {
                return Err((
                    BAD,
                    format!("spare-add: {d:?} is not a device path under /dev/"),
                ));
            }
            Act::SpareAdd(PathBuf::from(d))
        }
        other => {
            return Err((
                BAD,
                format!(
                    "unknown action {:?} (scan-start, scan-stop, spare-add)",
                    other.unwrap_or("")
                ),
            ))
        }
    };
    Ok(Request {
        target: target.to_string(),
        act,
    })
}

/// The device a form names, as its path resolves: a link anyone may make (in
/// /dev/shm) must not lead elsewhere, and the log names the real device. (That it is a
/// blank block device nobody uses is `remapctl spare-add`'s check.)
pub fn resolve(d: &std::path::Path) -> Result<PathBuf, String> {
    let real = std::fs::canonicalize(d).map_err(|e| format!("{}: {e}", d.display()))?;
    let shared = ["/dev/shm", "/dev/mqueue", "/dev/fd", "/dev/pts"]
        .iter()
        .any(|p| real.starts_with(p));
    if !real.starts_with("/dev") || real == std::path::Path::new("/dev") || shared {
        return Err(format!(
            "{} resolves to {}, not a device node under /dev",
            d.display(),
            real.display()
        ));
    }
    Ok(real)
}

/// Carries out a checked request; what happened, in words (for the log).
pub fn carry_out(dm: &Dm, r: &Request) -> String {
    let head = format!("{}: dashboard", r.target);
    match &r.act {
        Act::ScanStart | Act::ScanStop => {
            let verb = if r.act == Act::ScanStart {
                "scan start"
            } else {
                "scan stop"
            };
            match dm.target(&r.target) {
                Ok(Some(_)) => crate::policy::scan(dm, &r.target, r.act == Act::ScanStart, &head),
                Ok(None) => format!("{head}: {verb} refused: not a dm-remap target"),
                Err(e) => format!("{head}: {verb} refused: {e}"),
            }
        }
        Act::SpareAdd(d) => {
            let real = match resolve(d) {
                Ok(p) => p,
                Err(e) => return format!("{head}: spare-add refused: {e}"),
            };
            let a = crate::admin::SpareAddArgs {
                name: r.target.clone(),
                spare: real,
                format_spare: false,
                dry_run: false,
            };
            match crate::admin::spare_add_to(&a) {
                Ok(m) => format!("{head}: spare-add: {m}"),
                Err(e) => format!("{head}: spare-add refused: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn form() -> Headers {
        Headers {
            host: Some("127.0.0.1:9577".into()),
            origin: Some("http://127.0.0.1:9577".into()),
            fetch_site: Some("same-origin".into()),
            content_type: Some("application/x-www-form-urlencoded".into()),
        }
    }

    #[test]
    fn tokens_are_fresh_and_compared_whole() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same(&a, &a[..63]));
        assert!(!same(&a, ""));
    }

    #[test]
    fn a_device_path_must_resolve_under_dev() {
        assert_eq!(resolve("/dev/null".as_ref()), Ok("/dev/null".into()));
        let dir = std::env::temp_dir().join(format!("dmr-resolve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("sdx");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        let e = resolve(&link).unwrap_err();
        assert!(
            e.contains("resolves to /etc/passwd, not a device node"),
            "{e}"
        );
        assert!(resolve("/dev/nonexistent-dmr".as_ref()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn forms_decode() {
        assert_eq!(
            parse_form("a=1&device=%2Fdev%2Fvdb&x=a+b&&e").unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("device".into(), "/dev/vdb".into()),
                ("x".into(), "a b".into()),
                ("e".into(), "".into()),
            ]
        );
        assert_eq!(parse_form("a=%2"), None);
        assert_eq!(parse_form("a=%zz"), None);
        assert_eq!(parse_form("a=%ff"), None, "not UTF-8");
        assert_eq!(parse_form("a=%+a"), None, "two hex digits");
    }

    #[test]
    fn a_request_with_the_token_is_taken() {
        let body = format!("token={T}&target=safe0&do=spare-add&device=%2Fdev%2Fvdc");
        assert_eq!(
            check(&form(), &body, T),
            Ok(Request {
                target: "safe0".into(),
                act: Act::SpareAdd("/dev/vdc".into())
            })
        );
        // A browser that sends neither header (an older one) still needs the token.
        let bare = Headers {
            host: Some("localhost:9577".into()),
            content_type: Some("application/x-www-form-urlencoded; charset=UTF-8".into()),
            ..Headers::default()
        };
        let body = format!("do=scan-stop&target=safe0&token={T}");
        assert_eq!(check(&bare, &body, T).unwrap().act, Act::ScanStop);
    }

    #[test]
    fn forged_and_bad_requests_are_refused_with_a_reason() {
        let ok = format!("token={T}&target=safe0&do=scan-start");
        let refused = |h: &Headers, body: &str| check(h, body, T).unwrap_err();
        // The token: missing, another, cut short.
        for body in [
            "target=safe0&do=scan-start".to_string(),
            ok.replace(T, &T.replace('0', "1")),
            ok.replace(T, &T[..32]),
        ] {
            let (st, why) = refused(&form(), &body);
            assert_eq!(
                (st, why.as_str()),
                ("403 Forbidden", "bad or missing token")
            );
        }
        // Another site's page.
        let mut h = form();
        h.origin = Some("http://evil.example".into());
        assert_eq!(refused(&h, &ok).0, "403 Forbidden");
        h.origin = Some("null".into());
        assert_eq!(refused(&h, &ok).0, "403 Forbidden");
        // Another loopback server (a development server on another port).
        h.origin = Some("http://127.0.0.1:3000".into());
        assert_eq!(refused(&h, &ok).0, "403 Forbidden");
        let mut h = form();
        h.host = None;
        assert_eq!(
            refused(&h, &ok),
            ("400 Bad Request", "no Host header".into())
        );
        let mut h = form();
        h.fetch_site = Some("cross-site".into());
        assert!(refused(&h, &ok).1.contains("cross-site"));
        // Not a form (a script's JSON or text/plain).
        let mut h = form();
        h.content_type = Some("text/plain".into());
        assert_eq!(refused(&h, &ok).0, "415 Unsupported Media Type");
        // What it asks for.
        let (st, why) = refused(&form(), &format!("token={T}&target=safe0&do=rm"));
        assert_eq!(st, "400 Bad Request");
        assert!(why.contains("unknown action \"rm\""), "{why}");
        let (_, why) = refused(
            &form(),
            &format!("token={T}&target=safe0&do=spare-add&device=%2Fetc%2Fpasswd"),
        );
        assert!(why.contains("not a device path under /dev/"), "{why}");
        let (_, why) = refused(
            &form(),
            &format!("token={T}&target=safe0&do=spare-add&device=%2Fdev%2F..%2Fetc%2Fpasswd"),
        );
        assert!(why.contains("not a device path"), "{why}");
        assert!(refused(&form(), &format!("token={T}&do=scan-start"))
            .1
            .contains("no target"));
        assert!(
            refused(&form(), &format!("token={T}&target=a%2Fb&do=scan-start"))
                .1
                .contains("not a valid device-mapper name")
        );
    }
}
