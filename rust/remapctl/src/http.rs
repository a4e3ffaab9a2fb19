//! `remapctl monitor --http ADDR`: the metrics on a loopback address, for Prometheus to
//! scrape (`GET /metrics`, the Prometheus text format of `remapctl metrics`, read from
//! the kernel at each scrape), and the dashboard page (`GET /`, crate::dashboard). Loopback only: the figures name the host's devices, and
//! a scrape from elsewhere goes through whatever proxy the admin trusts.
//!
//! One request per connection, each connection on a thread of its own (at most 8 at
//! once; more are closed): a scrape reads every target's status (a few ioctls). A
//! request larger than 8 KiB, or not complete within 5 seconds of the connection, is
//! dropped. A `Host` header that does not name a loopback address or `localhost` gets
//! 403 (DNS rebinding).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (or `HEAD`).
    Metrics,
    /// `GET /`: the dashboard (crate::dashboard).
    Index,
    /// `POST /action`: one of the dashboard's actions (crate::actions).
    Action,
    /// Any other path.
    NotFound,
    /// Any other method.
    BadMethod,
    /// Not an HTTP request line.
    BadRequest,
}

/// The route of a request line such as `GET /metrics HTTP/1.1` (a query string is
/// ignored, as Prometheus may add one).
pub fn route(line: &str) -> Route {
    let mut f = line.split_ascii_whitespace();
    let (Some(method), Some(target), Some(version), None) =
        (f.next(), f.next(), f.next(), f.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    if method == "POST" && target == "/action" {
        return Route::Action;
    }
    if method != "GET" && method != "HEAD" {
        return Route::BadMethod;
    }
    match target.split('?').next() {
        Some("/metrics") => Route::Metrics,
        Some("/") => Route::Index,
        _ => Route::NotFound,
    }
}

/// The address to listen on, refused unless it is a loopback address.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let a: SocketAddr = s
        .parse()
        .map_err(|_| format!("--http {s:?}: not an address:port (e.g. 127.0.0.1:9577)"))?;
    if !a.ip().is_loopback() {
        return Err(format!(
            "--http {s}: only a loopback address is served (127.0.0.1, [::1]); scrape it through a proxy"
        ));
    }
    Ok(a)
}

const LIMIT: u64 = 8192;

/// Headers every answer carries: no page of another site may frame the dashboard
/// (a framed page's forms would carry the token: clickjacking), its forms post only to
/// it, and nothing is cached or sniffed.
pub const SAFE_HEADERS: &str = "X-Frame-Options: DENY\r\nContent-Security-Policy: frame-ancestors 'none'; form-action 'self'\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";

fn respond(s: &mut TcpStream, status: &str, ctype: &str, body: &str, head: bool) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{SAFE_HEADERS}Connection: close\r\n\r\n",
        body.len()
    );
    if !head {
        let _ = s.write_all(body.as_bytes());
    }
}

/// 200 with the body, or 500 with the reason it could not be made.
fn answer(s: &mut TcpStream, ctype: &str, body: Result<String, String>, head: bool) {
    match body {
        Ok(b) => respond(s, "200 OK", ctype, &b, head),
        Err(e) => respond(
            s,
            "500 Internal Server Error",
            "text/plain; charset=utf-8",
            &format!("{e}\n"),
            head,
        ),
    }
}

/// Whether a `Host` header value names this loopback server (a page of another site
/// that resolves its own name to 127.0.0.1 must not read the dashboard: DNS
/// rebinding).
pub fn host_ok(host: &str) -> bool {
    let h = host.trim();
    if h.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
    {
        return true;
    }
    let name = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        h.rsplit_once(':').map_or(h, |(n, _)| n)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// How long a client has to send its whole request.
const REQUEST_TIME: Duration = Duration::from_secs(5);

/// Reads one line within the request's deadline (the socket's timeout is what is left
/// of it before each read); `None` when the time is up, the client stops or the line is
/// cut by the size limit.
fn line_by(
    r: &mut BufReader<std::io::Take<TcpStream>>,
    deadline: std::time::Instant,
) -> Option<String> {
    let mut line = String::new();
    loop {
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        if left.is_zero() {
            return None;
        }
        r.get_ref().get_ref().set_read_timeout(Some(left)).ok()?;
        let before = line.len();
        match r.read_line(&mut line) {
            Ok(_) if line.ends_with('\n') => return Some(line),
            Ok(_) if line.len() == before => return None,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Reads the `n`-byte body within the request's deadline.
fn body_by(
    r: &mut BufReader<std::io::Take<TcpStream>>,
    n: usize,
    deadline: std::time::Instant,
) -> Option<String> {
    let mut body = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        if left.is_zero() {
            return None;
        }
        r.get_ref().get_ref().set_read_timeout(Some(left)).ok()?;
        match r.read(body.get_mut(got..)?) {
            Ok(0) => return None,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    String::from_utf8(body).ok()
}

/// Whether a refused action may be logged now (at most one line per 10 s): `Some` with
/// the number of refusals not logged since the last line.
fn refusal_log_due() -> Option<u64> {
    use std::sync::Mutex;
    use std::time::Instant;
    static LAST: Mutex<(Option<Instant>, u64)> = Mutex::new((None, 0));
    let mut g = LAST.lock().ok()?;
    let now = Instant::now();
    match g.0 {
        Some(t) if now.duration_since(t) < std::time::Duration::from_secs(10) => {
            g.1 += 1;
            None
        }
        _ => {
            let more = g.1;
            *g = (Some(now), 0);
            Some(more)
        }
    }
}

/// A dashboard action (`POST /action`, crate::actions): checked against the token,
/// carried out, logged; the browser is sent back to the page.
fn act(
    s: &mut TcpStream,
    r: &mut BufReader<std::io::Take<TcpStream>>,
    h: &crate::actions::Headers,
    length: Option<usize>,
    token: Option<&str>,
    deadline: std::time::Instant,
) {
    let text = "text/plain; charset=utf-8";
    let Some(token) = token else {
        respond(
            s,
            "405 Method Not Allowed",
            text,
            "the dashboard is read-only (remapctl monitor --actions enables its actions)\n",
            false,
        );
        return;
    };
    let n = match length {
        None => {
            respond(s, "411 Length Required", text, "no Content-Length\n", false);
            return;
        }
        Some(n) if n > crate::actions::BODY_MAX => {
            respond(s, "413 Content Too Large", text, "at most 4 KiB\n", false);
            return;
        }
        Some(n) => n,
    };
    // The headers had their own 8 KiB; the body gets its length (part of it may be in
    // the reader's buffer already).
    let buffered = r.buffer().len();
    r.get_mut().set_limit(n.saturating_sub(buffered) as u64);
    let Some(body) = body_by(r, n, deadline) else {
        return;
    };
    match crate::actions::check(h, &body, token) {
        Err((status, why)) => {
            // Anyone's page can send these: at most one log line per 10 s, so they can
            // neither fill the journal nor push the real events off the page.
            if let Some(more) = refusal_log_due() {
                let more = if more > 0 {
                    format!(" ({more} more refused before it)")
                } else {
                    String::new()
                };
                crate::monitor::log(&format!(
                    "dashboard: action refused ({status}): {why}{more}"
                ));
            }
            respond(s, status, text, &format!("{why}\n"), false);
        }
        Ok(req) => {
            let done = crate::dm::Dm::open()
                .map(|dm| crate::actions::carry_out(&dm, &req))
                .unwrap_or_else(|e| format!("{}: dashboard: {e}", req.target));
            crate::monitor::log(&done);
            let body = format!("{done}\n");
            let _ = write!(
                s,
                "HTTP/1.1 303 See Other\r\nLocation: /\r\nContent-Type: {text}\r\nContent-Length: {}\r\n{SAFE_HEADERS}Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    }
}

fn serve_one(mut s: TcpStream, token: Option<&str>) {
    let _ = s.set_write_timeout(Some(REQUEST_TIME));
    let Ok(clone) = s.try_clone() else { return };
    let deadline = std::time::Instant::now() + REQUEST_TIME;
    let mut r = BufReader::new(clone.take(LIMIT));
    handle(&mut s, &mut r, token, deadline);
    finish(&s, &mut r);
}

/// Ends a connection without a reset: the answer is out (the write side is shut), then
/// what the client still sends (a body the answer did not need, within the request's
/// LIMIT, for at most a second) is read and dropped. Closing a socket with unread
/// input makes the kernel send RST, and a client that had not read the answer yet
/// would see "connection reset" instead of it.
fn finish(s: &TcpStream, r: &mut BufReader<std::io::Take<TcpStream>>) {
    let _ = s.shutdown(std::net::Shutdown::Write);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let mut sink = [0u8; 4096];
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || r.get_ref().get_ref().set_read_timeout(Some(left)).is_err() {
            return;
        }
        match r.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// One request: read, checked, answered.
fn handle(
    s: &mut TcpStream,
    r: &mut BufReader<std::io::Take<TcpStream>>,
    token: Option<&str>,
    deadline: std::time::Instant,
) {
    let Some(line) = line_by(r, deadline) else {
        return;
    };
    // The headers, up to the empty line: Host for every request, the others for an
    // action's.
    let mut host_good = true;
    let mut h = crate::actions::Headers::default();
    let mut length = None;
    // Framing this server does not do, or lengths that disagree: refused (a proxy in
    // front might read them otherwise: request smuggling).
    let mut bad_framing = false;
    loop {
        let Some(hl) = line_by(r, deadline) else {
            return;
        };
        if hl == "\r\n" || hl == "\n" {
            break;
        }
        if let Some((k, v)) = hl.split_once(':') {
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("host") && !host_ok(v) {
                host_good = false;
            } else if k.eq_ignore_ascii_case("origin") {
                h.origin = Some(v.to_string());
            } else if k.eq_ignore_ascii_case("sec-fetch-site") {
                h.fetch_site = Some(v.to_string());
            } else if k.eq_ignore_ascii_case("content-type") {
                h.content_type = Some(v.to_string());
            } else if k.eq_ignore_ascii_case("content-length") {
                if length.is_some() || v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
                    bad_framing = true;
                }
                // Too many digits counts as too large.
                length = Some(v.parse().unwrap_or(usize::MAX));
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                bad_framing = true;
            }
            if k.eq_ignore_ascii_case("host") {
                h.host = Some(v.to_string());
            }
        }
    }
    if bad_framing {
        respond(
            s,
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "no Transfer-Encoding; one Content-Length of digits\n",
            false,
        );
        return;
    }
    if !host_good {
        respond(
            s,
            "403 Forbidden",
            "text/plain; charset=utf-8",
            "loopback host names only\n",
            false,
        );
        return;
    }
    let head = line.starts_with("HEAD ");
    let text = "text/plain; charset=utf-8";
    match route(line.trim_end()) {
        Route::Metrics => answer(
            s,
            "text/plain; version=0.0.4; charset=utf-8",
            crate::dm::Dm::open()
                .and_then(|dm| crate::metrics::gather(&dm))
                .map(|t| crate::metrics::to_prometheus_text(&t)),
            head,
        ),
        Route::Index => answer(
            s,
            "text/html; charset=utf-8",
            crate::dm::Dm::open().and_then(|dm| crate::dashboard::page(&dm, token)),
            head,
        ),
        Route::Action => act(s, r, &h, length, token, deadline),
        Route::NotFound => respond(s, "404 Not Found", text, "not found\n", head),
        Route::BadMethod => respond(
            s,
            "405 Method Not Allowed",
            text,
            "GET or HEAD only\n",
            head,
        ),
        Route::BadRequest => respond(s, "400 Bad Request", text, "bad request\n", false),
    }
}

/// Listens on `addr` and serves requests on a thread of its own; the error when the
/// address cannot be bound. With a token, the dashboard's actions are on
/// (crate::actions).
pub fn start(addr: SocketAddr, token: Option<String>) -> Result<(), String> {
    let l = TcpListener::bind(addr).map_err(|e| format!("--http {addr}: {e}"))?;
    std::thread::spawn(move || serve(l, token.map(std::sync::Arc::from)));
    Ok(())
}

/// At most this many connections are served at once; one more is closed at once.
const CONNECTIONS: usize = 8;

/// Serves each connection on a thread of its own, so a slow client holds up only
/// itself (for at most [`REQUEST_TIME`] while it sends its request).
fn serve(l: TcpListener, token: Option<std::sync::Arc<str>>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let busy = Arc::new(AtomicUsize::new(0));
    for s in l.incoming().flatten() {
        if busy.fetch_add(1, Ordering::AcqRel) >= CONNECTIONS {
            busy.fetch_sub(1, Ordering::AcqRel);
            continue; // dropped: closed
        }
        /// Gives the slot back when the connection's thread ends, even by a panic.
        struct Slot(Arc<AtomicUsize>);
        impl Drop for Slot {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let slot = Slot(Arc::clone(&busy));
        let token = token.clone();
        // A thread that cannot start drops its closure, and with it the slot.
        let _ = std::thread::Builder::new().spawn(move || {
            let _slot = slot;
            serve_one(s, token.as_deref());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_routed() {
        assert_eq!(route("GET /metrics HTTP/1.1"), Route::Metrics);
        assert_eq!(route("HEAD /metrics?x=1 HTTP/1.0"), Route::Metrics);
        assert_eq!(route("GET / HTTP/1.1"), Route::Index);
        assert_eq!(route("GET /etc/passwd HTTP/1.1"), Route::NotFound);
        assert_eq!(route("POST /metrics HTTP/1.1"), Route::BadMethod);
        assert_eq!(route("POST /action HTTP/1.1"), Route::Action);
        assert_eq!(route("GET /action HTTP/1.1"), Route::NotFound);
        assert_eq!(route("GET /metrics"), Route::BadRequest);
        assert_eq!(route("GET /metrics SPDY/3"), Route::BadRequest);
        assert_eq!(route(""), Route::BadRequest);
    }

    #[test]
    fn host_names_are_loopback_only() {
        for h in [
            "127.0.0.1:9577",
            " localhost",
            "LOCALHOST:1",
            "[::1]:9577",
            "::1",
            "127.0.0.2",
        ] {
            assert!(host_ok(h), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:9577",
            "10.0.0.1:9577",
            "[fe80::1]:80",
            "",
        ] {
            assert!(!host_ok(h), "{h}");
        }
    }

    #[test]
    fn only_loopback_is_served() {
        assert!(parse_addr("127.0.0.1:9577").is_ok());
        assert!(parse_addr("[::1]:9577").is_ok());
        assert!(parse_addr("0.0.0.0:9577").unwrap_err().contains("loopback"));
        assert!(parse_addr("192.168.1.2:80")
            .unwrap_err()
            .contains("loopback"));
        assert!(parse_addr("localhost")
            .unwrap_err()
            .contains("not an address"));
    }

    /// Actions over a real connection: refused while off (405), and while on without
    /// the token (403), without a length (411), with too long a body (413); the
    /// reason is in the answer.
    #[test]
    fn actions_need_the_flag_and_the_token() {
        let serve_on = |token: Option<&str>| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let token = token.map(std::sync::Arc::from);
            std::thread::spawn(move || serve(l, token));
            addr
        };
        let ask = |addr: SocketAddr, req: String| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(req.as_bytes()).unwrap();
            let mut out = String::new();
            let _ = c.read_to_string(&mut out);
            out
        };
        let post = |body: &str| {
            format!(
                "POST /action HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let off = serve_on(None);
        let a = ask(off, post("target=x&do=scan-start"));
        assert!(
            a.starts_with("HTTP/1.1 405") && a.contains("--actions"),
            "{a}"
        );
        let on = serve_on(Some("secret"));
        let a = ask(on, post("target=x&do=scan-start&token=guess"));
        assert!(
            a.starts_with("HTTP/1.1 403") && a.ends_with("bad or missing token\n"),
            "{a}"
        );
        let a = ask(
            on,
            "POST /action HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n"
                .into(),
        );
        assert!(a.starts_with("HTTP/1.1 411"), "{a}");
        let a = ask(on, post(&"a".repeat(5000)));
        assert!(a.starts_with("HTTP/1.1 413"), "{a}");
        let a = ask(on, post("target=x&do=nothing&token=secret"));
        assert!(
            a.starts_with("HTTP/1.1 400") && a.contains("unknown action"),
            "{a}"
        );
        // Every answer forbids framing (clickjacking of the forms).
        assert!(
            a.contains("X-Frame-Options: DENY\r\n")
                && a.contains("frame-ancestors 'none'")
                && a.contains("Cache-Control: no-store"),
            "{a}"
        );
        // Framing it does not do, or lengths that disagree.
        let body = "target=x&do=nothing&token=secret";
        for extra in [
            "Transfer-Encoding: chunked\r\n".to_string(),
            format!("Content-Length: {}\r\n", body.len()),
        ] {
            let req = post(body).replacen("\r\n\r\n", &format!("\r\n{extra}\r\n"), 1);
            let a = ask(on, req);
            assert!(a.starts_with("HTTP/1.1 400"), "{extra}: {a}");
        }
        let a = ask(
            on,
            post(body).replace(&format!("Length: {}", body.len()), "Length: +32"),
        );
        assert!(a.starts_with("HTTP/1.1 400"), "{a}");
        // Large headers (cookies) do not eat into the body's allowance.
        let req = post(body).replacen(
            "\r\n\r\n",
            &format!("\r\nCookie: {}\r\n\r\n", "c".repeat(7000)),
            1,
        );
        let a = ask(on, req);
        assert!(
            a.starts_with("HTTP/1.1 400") && a.contains("unknown action"),
            "{a}"
        );
    }

    #[test]
    fn an_answer_sent_before_the_body_is_read_is_not_lost_to_a_reset() {
        // A POST refused on its headers, whose body comes after the answer went out (a
        // client that sends the two apart). A server that closed at once would meet the
        // body with RST, and a client that had not read the answer yet would get a
        // reset instead of it. The server reads the rest for a second before it closes:
        // the client's later writes still land, and it reads the 405.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || serve(l, None));
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"POST /action HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2000\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        c.write_all(&[b'x'; 1000]).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        c.write_all(&[b'x'; 1000])
            .expect("the server still reads: no reset");
        let mut out = String::new();
        c.read_to_string(&mut out).expect("the answer, not a reset");
        assert!(out.starts_with("HTTP/1.1 405"), "{out}");
    }

    /// A real connection: a 404 (also to HEAD, without a body), a 405 and an oversized
    /// request.
    #[test]
    fn a_connection_gets_an_answer() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || serve(l, None));
        let ask = |req: &[u8]| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(req).unwrap();
            let mut out = String::new();
            let _ = c.read_to_string(&mut out);
            out
        };
        assert!(ask(b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(ask(b"DELETE /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        let head = ask(b"HEAD /nope HTTP/1.1\r\n\r\n");
        assert!(
            head.starts_with("HTTP/1.1 404") && head.ends_with("\r\n\r\n"),
            "HEAD has no body: {head}"
        );
        let mut big = b"GET /".to_vec();
        big.extend(std::iter::repeat_n(b'a', 10_000));
        big.extend(b" HTTP/1.1\r\n\r\n");
        assert_eq!(ask(&big), "", "an oversized request line is dropped");
        assert!(
            ask(b"GET /nope HTTP/1.1\r\nHost: evil.example:9577\r\n\r\n")
                .starts_with("HTTP/1.1 403")
        );
        assert!(
            ask(b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1:9577\r\n\r\n").starts_with("HTTP/1.1 404")
        );
        // A client that trickles its request does not hold up another one, and is
        // dropped once its 5 seconds are up.
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET /").unwrap();
        let t = std::time::Instant::now();
        assert!(ask(b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(1500));
            let _ = slow.write_all(b"a");
        }
        let mut rest = String::new();
        slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(
            slow.read_to_string(&mut rest).unwrap_or(0),
            0,
            "closed: {rest}"
        );
    }
}
