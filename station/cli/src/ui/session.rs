//! Sign-in with the station's API key, sessions in memory, the signed-in operator.

use super::page::{self, Flash};
use super::St;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use pht_web::guard::{
    behind_tls, cleared_cookie, cookie_token, csrf_matches, csrf_token, new_token,
    redirect_with_cookie, same_origin, session_cookie, token_hash, CsrfForm,
};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie's name (another than the route service's: both may run on one host).
pub const COOKIE: &str = "pht_station_session";
/// How long a session lasts: a working day.
const TTL: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at once; signing in past this ends the oldest.
const MAX_SESSIONS: usize = 64;
/// How long a wrong key waits before its answer: guessing a 256-bit key is hopeless anyway,
/// this only keeps a script from filling the log.
const WRONG_KEY_PAUSE: Duration = Duration::from_secs(1);

/// Session-token hashes and when each ends.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Instant>>);

impl Sessions {
    fn valid(&self, hash: &str) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        m.retain(|_, end| *end > now);
        m.contains_key(hash)
    }

    fn add(&self, hash: String) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_SESSIONS {
            if let Some(oldest) = m.iter().min_by_key(|(_, e)| **e).map(|(h, _)| h.clone()) {
                m.remove(&oldest);
            }
        }
        m.insert(hash, Instant::now() + TTL);
    }

    fn end(&self, hash: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(hash);
    }
}

/// The signed-in operator of a request, and the CSRF token its forms carry.
pub struct Operator {
    /// The token forms carry.
    pub csrf: String,
    hash: String,
}

impl FromRequestParts<St> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ui: &St) -> Result<Self, Response> {
        let signed_in = cookie_token(&parts.headers, COOKIE)
            .map(|t| (token_hash(&t), t))
            .filter(|(h, _)| ui.sessions.valid(h));
        match signed_in {
            Some((hash, token)) => Ok(Operator {
                csrf: csrf_token(&token),
                hash,
            }),
            None => Err(Redirect::to("/login").into_response()),
        }
    }
}

/// A form's CSRF field and origin checked: the 403 page when they do not hold.
pub fn refused(op: &Operator, headers: &HeaderMap, given: &str) -> Option<Response> {
    if same_origin(headers) && csrf_matches(&op.csrf, given) {
        return None;
    }
    tracing::warn!("station dashboard: a form without this session's CSRF token or from another origin was refused");
    Some(page::status_page(
        StatusCode::FORBIDDEN,
        "Refused",
        "This form did not come from this dashboard's own page (its security token is missing or stale, or it was sent from another site). Reload the page and try again.",
    ))
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    /// `out` after sign-out: a code, never text.
    m: Option<String>,
}

/// `GET /login`.
pub async fn login_page(State(ui): State<St>, Query(q): Query<LoginQuery>) -> Response {
    let flash = (q.m.as_deref() == Some("out")).then(|| Flash::info("Signed out."));
    login_form(&ui, StatusCode::OK, flash)
}

fn login_form(ui: &St, status: StatusCode, flash: Option<Flash>) -> Response {
    let mut r = page::bare(
        &ui.station,
        "Sign in",
        flash.as_ref(),
        html! {
            form.card method="post" action="/login" {
                h1 { "Sign in to station " (ui.station) }
                p { "With this station's API key: the one in the file its configuration names (" code { "[watch] api_key_file" } "). It is exchanged for a session and not kept in the browser." }
                label for="api_key" { "Station API key" }
                input #api_key name="api_key" type="password" required autocomplete="current-password" autofocus;
                button type="submit" { "Sign in" }
            }
        },
    );
    *r.status_mut() = status;
    r
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    api_key: String,
}

/// `POST /login`.
pub async fn login(State(ui): State<St>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    if !same_origin(&headers) {
        return page::status_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "Sign in from this dashboard's own page.",
        );
    }
    let given = f.api_key.trim().as_bytes();
    let right = aws_lc_rs::constant_time::verify_slices_are_equal(
        given,
        ui.api_key.expose_secret().as_bytes(),
    )
    .is_ok();
    if !right {
        tracing::warn!("station dashboard: a sign-in with a wrong key was refused");
        tokio::time::sleep(WRONG_KEY_PAUSE).await;
        return login_form(
            &ui,
            StatusCode::UNAUTHORIZED,
            Some(Flash::error("That is not this station's API key.")),
        );
    }
    let Some(token) = new_token() else {
        return page::status_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Failed",
            "This host gave no random bytes for a session; try again.",
        );
    };
    ui.sessions.add(token_hash(&token));
    tracing::info!("station dashboard: signed in");
    let cookie = session_cookie(COOKIE, &token, "/", TTL.as_secs(), behind_tls(&headers));
    redirect_with_cookie("/", &cookie)
}

/// `POST /logout`.
pub async fn logout(
    State(ui): State<St>,
    op: Operator,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = refused(&op, &headers, &f.csrf) {
        return r;
    }
    ui.sessions.end(&op.hash);
    redirect_with_cookie("/login?m=out", &cleared_cookie(COOKIE, "/"))
}
