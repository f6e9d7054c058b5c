//! `GET /v1/registry-token`: distribution's token endpoint (its `auth.token.realm`). The
//! registry client authenticates with HTTP Basic: a principal's id and API key (stations and
//! creators log in to the registry with these), or the service's mover account. No
//! credentials: public pulls only. Wrong credentials: 401.

use super::{AppState, Failure};
use crate::auth::key_matches;
use crate::token::{grant, parse_scope, Grantee};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use base64::Engine;
use route_wire::{PrincipalId, Role};

/// A registry token, in the two spellings clients read.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RegistryToken {
    /// The signed JWT.
    pub token: String,
    /// The same, as OAuth2 clients read it.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// `%XX` and `+` decoding of one query value.
fn decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(x) => {
                        out.push(x);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn grantee(st: &AppState, h: &HeaderMap) -> Result<(Grantee, String), Failure> {
    let Some(v) = h
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok((Grantee::Anonymous, String::new()));
    };
    match login(st, v).await? {
        Ok(g) => Ok(g),
        Err(known) => Err(super::caller::login_failed("registry_login", known.as_ref()).await),
    }
}

/// Who the Basic credentials `v` log in; `Err(known principal or none)` when they do not.
async fn login(
    st: &AppState,
    v: &str,
) -> Result<Result<(Grantee, String), Option<PrincipalId>>, Failure> {
    let Some(text) = v
        .strip_prefix("Basic ")
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
    else {
        return Ok(Err(None));
    };
    let Some((user, pass)) = text.split_once(':') else {
        return Ok(Err(None));
    };
    let Ok(id) = user.parse::<PrincipalId>() else {
        return Ok(Err(None));
    };
    let Some((role, hash)) = st.db.principal(&id).await? else {
        return Ok(Err(None));
    };
    if !key_matches(&id, pass, &hash) {
        return Ok(Err(Some(id)));
    }
    // A party's grants hold at its own registry only: the `service` of the registry it is
    // registered on (a party on a registry that takes no tokens of ours gets none).
    let service_of = |address: &str| {
        st.cfg
            .registries
            .iter()
            .find(|r| r.address == address)
            .and_then(|r| r.token_service.clone())
    };
    let g = match role {
        Role::Station => match st.db.station(&id).await? {
            Some(s) => match service_of(&s.registry) {
                Some(service) => Grantee::Station {
                    namespace: s.namespace,
                    service,
                },
                None => Grantee::Anonymous,
            },
            None => return Ok(Err(Some(id))),
        },
        Role::Creator => match st.db.creator(&id).await? {
            Some(c) => match service_of(&c.registry) {
                Some(service) => Grantee::Creator {
                    namespace: c.namespace,
                    service,
                },
                None => Grantee::Anonymous,
            },
            None => return Ok(Err(Some(id))),
        },
        _ => Grantee::Anonymous,
    };
    Ok(Ok((g, id.to_string())))
}

/// `GET /v1/registry-token?service=…&scope=…`.
#[utoipa::path(get, path = "/v1/registry-token", security((), ("registry_login" = [])),
    params(("service" = String, Query, description = "the registry's `auth.token.service`"),
           ("scope" = Option<Vec<String>>, Query, explode = true, style = Form,
            description = "`repository:<name>:<actions>`; repeatable, or several in one separated by spaces")),
    responses((status = 200, description = "a token with the scopes granted (those not granted are left out)", body = RegistryToken),
              (status = 401, description = "wrong registry credentials", body = route_wire::ApiError),
              (status = 404, description = "this service issues no registry tokens (no `[token]` configured)", body = route_wire::ApiError),
              (status = 422, description = "no `service`, or not one this service issues tokens for", body = route_wire::ApiError)))]
pub async fn issue(
    State(st): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<RegistryToken>, Failure> {
    let Some(tokens) = st.tokens.clone() else {
        return Err(Failure::not_found(
            "this service issues no registry tokens (no [token] configured)",
        ));
    };
    let (mut service, mut scopes) = (None, Vec::new());
    for pair in q.unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "service" => service = Some(decode(v)),
            "scope" => scopes.extend(decode(v).split(' ').filter_map(parse_scope)),
            _ => {}
        }
    }
    let service = service.ok_or_else(|| Failure::invalid("no `service`"))?;
    if !st
        .cfg
        .registries
        .iter()
        .any(|r| r.token_service.as_deref() == Some(service.as_str()))
    {
        return Err(Failure::invalid(format!(
            "`{service}` is not a registry this service issues tokens for"
        )));
    }
    let (who, subject) = grantee(&st, &headers).await?;
    let access = grant(&who, &service, &scopes, tokens.public_pull());
    if access.len() < scopes.len() {
        tracing::info!(principal = %subject, service, asked = scopes.len(), granted = access.len(), "registry token: scopes not granted");
    }
    let token = tokens
        .issue(&subject, &service, &access)
        .map_err(Failure::internal)?;
    Ok(Json(RegistryToken {
        access_token: token.clone(),
        token,
        expires_in: tokens.lifetime_secs(),
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(
            super::decode("repository%3Ast-1%2Foutbox%3Apull%2Cpush"),
            "repository:st-1/outbox:pull,push"
        );
        assert_eq!(super::decode("a+b%"), "a b%");
    }
}
