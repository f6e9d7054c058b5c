//! The guards of a server-rendered dashboard: what every answer carries (a strict
//! Content-Security-Policy and its companions), the session cookie (256 random bits; servers
//! keep only its SHA-256), the CSRF token forms carry (derived from the cookie, which a page of
//! another site cannot read) and the origin check every POST passes.

use aws_lc_rs::digest::{digest, SHA256};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;

/// Every page's Content-Security-Policy: scripts, styles and connections from this origin
/// only, no inline code, no frames, forms only back here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the headers every dashboard answer carries (for `axum::middleware::map_response`).
pub async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Nothing to other sites; `no-referrer` would also make browsers send `Origin: null`
    // with this site's own forms (Fetch standard), which the origin check refuses.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Pages hold what only their viewer may see: never cached on the way.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// A new session token: 256 random bits, URL-safe base64 (43 characters); `None` when the
/// system has no randomness to give.
pub fn new_token() -> Option<String> {
    let mut raw = [0u8; 32];
    aws_lc_rs::rand::fill(&mut raw).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

/// What a server keeps of a session token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(digest(&SHA256, token.as_bytes()))
}

/// The CSRF token of the session whose cookie holds `token`.
pub fn csrf_token(token: &str) -> String {
    let d = digest(&SHA256, format!("pht-ui csrf v1\0{token}").as_bytes());
    hex::encode(&d.as_ref()[..16])
}

/// Whether a form's CSRF field is the session's, compared in constant time.
pub fn csrf_matches(session_csrf: &str, given: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(session_csrf.as_bytes(), given.as_bytes())
        .is_ok()
}

/// The session token in cookie `name` of `headers`, if it has a token's shape.
pub fn cookie_token(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| {
            v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The `Set-Cookie` value of a session: `HttpOnly`, `SameSite=Strict`, `Secure` when `tls`.
pub fn session_cookie(name: &str, token: &str, path: &str, max_age_secs: u64, tls: bool) -> String {
    format!(
        "{name}={token}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        if tls { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn cleared_cookie(name: &str, path: &str) -> String {
    format!("{name}=; Path={path}; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// A redirect to `to` that sets the cookie `set_cookie` (sign-in, sign-out).
pub fn redirect_with_cookie(to: &str, set_cookie: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    if let Ok(v) = HeaderValue::from_str(set_cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// A form that carries only its CSRF token (sign-out, "check again").
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token, as the page gave it.
    pub csrf: String,
}

/// Whether the request came over TLS through a reverse proxy (then cookies are `Secure`).
pub fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A POST from a page of another origin is refused: browsers name the page's origin in
/// `Origin`; it must be this host. (Non-browser clients send none and carry no cookie of a
/// victim.)
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // `null` (an opaque origin: a sandboxed frame, a data: page) is no origin of ours.
    let o = origin.split_once("://").map_or("", |(_, h)| h);
    !host.is_empty() && o.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_post_from_another_origin_or_a_null_origin_is_refused() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8470")])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8470"),
            ("origin", "http://127.0.0.1:8470")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8470"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8470"),
            ("origin", "null")
        ])));
        // Another port is another origin.
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8470"),
            ("origin", "http://127.0.0.1:8471")
        ])));
    }

    #[test]
    fn only_a_token_shaped_cookie_of_that_name_is_read() {
        let t = new_token().unwrap();
        assert_eq!(t.len(), 43);
        let h = headers(&[("cookie", &format!("a=b; pht_x={t}; c=d"))]);
        assert_eq!(cookie_token(&h, "pht_x").as_deref(), Some(t.as_str()));
        assert_eq!(cookie_token(&h, "pht_y"), None);
        let h = headers(&[("cookie", "pht_x=short")]);
        assert_eq!(cookie_token(&h, "pht_x"), None);
        let h = headers(&[("cookie", &format!("pht_x={}", "%".repeat(43)))]);
        assert_eq!(cookie_token(&h, "pht_x"), None);
    }

    #[test]
    fn the_csrf_token_is_bound_to_its_session() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert!(csrf_matches(&csrf_token(&a), &csrf_token(&a)));
        assert!(!csrf_matches(&csrf_token(&a), &csrf_token(&b)));
        assert!(!csrf_matches(&csrf_token(&a), ""));
        assert_ne!(token_hash(&a), a);
    }
}
