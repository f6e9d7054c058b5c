//! Sign-in, sign-out and the signed-in viewer: an API key exchanged for a session cookie.
//!
//! The cookie holds 256 random bits; the database holds their SHA-256 and the principal's key
//! hash at sign-in (a changed or removed key ends the session). Forms carry a CSRF token
//! derived from the cookie (SHA-256 with a label), which a page of another site cannot read;
//! every POST must also come from this origin (`Origin`, which browsers send with forms).

use super::page::{self, Flash};
use crate::api::caller::login_failed;
use crate::api::{AppState, Caller};
use crate::auth::{key_matches, Principal};
use crate::clock::now_ms;
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
use route_wire::PrincipalId;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "pht_session";

/// The signed-in principal of a dashboard request, and its CSRF token.
pub struct Viewer {
    /// As the API sees it.
    pub caller: Caller,
    /// The token forms carry.
    pub csrf: String,
    token_hash: String,
}

impl Viewer {
    /// Its id.
    pub fn id(&self) -> &str {
        self.caller.id()
    }

    /// What a page needs of it.
    pub fn who(&self) -> page::Who<'_> {
        page::Who {
            id: self.caller.id(),
            role: self.caller.0.role,
            csrf: &self.csrf,
        }
    }
}

/// Not signed in (or no longer): to the sign-in page.
pub struct SignIn;

impl IntoResponse for SignIn {
    fn into_response(self) -> Response {
        Redirect::to("/ui/login").into_response()
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let Some(token) = cookie_token(&parts.headers, SESSION_COOKIE) else {
            return Err(SignIn.into_response());
        };
        let hash = token_hash(&token);
        match st.db.session(&hash, now_ms()).await {
            Ok(Some((id, role))) => Ok(Viewer {
                caller: Caller(Principal { id, role }),
                csrf: csrf_token(&token),
                token_hash: hash,
            }),
            Ok(None) => Err(SignIn.into_response()),
            Err(e) => Err(page::failure(&crate::api::Failure::from(e))),
        }
    }
}

/// A form's CSRF field checked against the viewer's (and the origin checked): the 403 page
/// when it does not match, `None` when it does.
pub(super) fn csrf_refused(v: &Viewer, headers: &HeaderMap, given: &str) -> Option<Response> {
    let ok = same_origin(headers) && csrf_matches(&v.csrf, given);
    if ok {
        return None;
    }
    tracing::warn!(
        principal = v.id(),
        "dashboard: a form without this session's CSRF token or from another origin was refused"
    );
    Some(page::status_page(
        StatusCode::FORBIDDEN,
        "Refused",
        "This form did not come from this dashboard's own page (its security token is missing or stale, or it was sent from another site). Reload the page and try again.",
    ))
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    /// `out` after sign-out. A code, never text: a link cannot put words on this page.
    m: Option<String>,
}

/// `GET /ui/login`.
pub async fn login_page(Query(q): Query<LoginQuery>) -> Response {
    let flash = (q.m.as_deref() == Some("out")).then(|| Flash::info("Signed out."));
    login_form(StatusCode::OK, flash)
}

fn login_form(status: StatusCode, flash: Option<Flash>) -> Response {
    let mut r = page::bare(
        "Sign in",
        flash.as_ref(),
        html! {
            form.card method="post" action="/ui/login" {
                h1 { "Sign in" }
                p { "With your principal id and the API key printed when you were registered. The key is exchanged for a session and is not kept in the browser." }
                label for="principal" { "Principal id" }
                input #principal name="principal" type="text" required autocomplete="username" autofocus;
                label for="api_key" { "API key" }
                input #api_key name="api_key" type="password" required autocomplete="current-password";
                button type="submit" { "Sign in" }
            }
        },
    );
    *r.status_mut() = status;
    r
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    principal: String,
    api_key: String,
}

/// `POST /ui/login`: the API key checked as the API checks it (a failure waits and is
/// counted the same), then a session.
pub async fn login(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        return page::status_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "Sign in from this dashboard's own page.",
        );
    }
    let again = |m: &str| login_form(StatusCode::UNAUTHORIZED, Some(Flash::error(m)));
    let id = f.principal.trim();
    let Ok(pid) = id.parse::<PrincipalId>() else {
        login_failed("dashboard", None).await;
        return again("Unknown principal or wrong key.");
    };
    let hash = match st.db.principal(&pid).await {
        Ok(Some((_, hash))) if key_matches(&pid, f.api_key.trim(), &hash) => hash,
        Ok(known) => {
            login_failed("dashboard", known.map(|_| &pid)).await;
            return again("Unknown principal or wrong key.");
        }
        Err(e) => return page::failure(&e.into()),
    };
    let Some(token) = new_token() else {
        return page::failure(&crate::api::Failure::internal(
            "no random bytes for a session",
        ));
    };
    let now = now_ms();
    let ttl = st.cfg.ui_session_secs;
    if let Err(e) = st
        .db
        .create_session(
            &token_hash(&token),
            &pid,
            &hash,
            now,
            now + ttl as i64 * 1000,
        )
        .await
    {
        return page::failure(&e.into());
    }
    tracing::info!(principal = %pid, "dashboard: signed in");
    let cookie = session_cookie(SESSION_COOKIE, &token, "/ui", ttl, behind_tls(&headers));
    redirect_with_cookie("/ui", &cookie)
}

/// `POST /ui/logout`: the session ends here and in the browser.
pub async fn logout(
    State(st): State<AppState>,
    v: Viewer,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = csrf_refused(&v, &headers, &f.csrf) {
        return r;
    }
    if let Err(e) = st.db.end_session(&v.token_hash).await {
        return page::failure(&e.into());
    }
    redirect_with_cookie("/ui/login?m=out", &cleared_cookie(SESSION_COOKIE, "/ui"))
}
