//! Answering a registry's `WWW-Authenticate` challenge with exactly the scope it names.
//! `oci-client` asks for `pull` or `pull,push` only; distribution wants the `delete` action for
//! a manifest DELETE, and says so in its challenge (`scope="repository:r:delete"`). Measured:
//! under token auth every source-tag delete of the route service's mover was refused (401)
//! until deletes answered the challenge itself. Mounts likewise: their challenge names the
//! source's `pull` beside the target's `push`.

use oci_client::secrets::RegistryAuth;
use std::collections::HashMap;

/// The `Authorization` header that answers `challenge` (a `WWW-Authenticate` value), if it is a
/// Bearer or Basic challenge this client can answer.
pub(crate) async fn answer(
    client: &reqwest::Client,
    challenge: &str,
    auth: &RegistryAuth,
) -> Result<Option<String>, String> {
    use base64::Engine;
    let (scheme, rest) = challenge.trim().split_once(' ').unwrap_or((challenge, ""));
    let basic = match auth {
        RegistryAuth::Basic(u, p) => {
            Some(base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
        }
        _ => None,
    };
    if scheme.eq_ignore_ascii_case("basic") {
        return Ok(basic.map(|b| format!("Basic {b}")));
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let params = parse_params(rest);
    let realm = params
        .get("realm")
        .ok_or("a Bearer challenge without a realm")?;
    let mut url = reqwest::Url::parse(realm).map_err(|e| format!("token realm `{realm}`: {e}"))?;
    if let Some(v) = params.get("service") {
        url.query_pairs_mut().append_pair("service", v);
    }
    // distribution names several scopes in one `scope`, space-separated (a mount: the target's
    // `pull,push` and the source's `pull`); the token protocol asks for one `scope` each.
    for scope in params.get("scope").into_iter().flat_map(|v| v.split(' ')) {
        if !scope.is_empty() {
            url.query_pairs_mut().append_pair("scope", scope);
        }
    }
    let mut req = client.get(url);
    if let Some(b) = basic {
        req = req.header(reqwest::header::AUTHORIZATION, format!("Basic {b}"));
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("token request: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("the token service answered {}", resp.status()));
    }
    // A token is a few KiB; a token service that sends more is not answered.
    let mut resp = resp;
    let mut bytes = Vec::new();
    while let Some(c) = resp
        .chunk()
        .await
        .map_err(|e| format!("token response: {e}"))?
    {
        bytes.extend_from_slice(&c);
        if bytes.len() > 64 << 10 {
            return Err("the token response is over 64 KiB; refused".into());
        }
    }
    let body: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("token response: {e}"))?;
    let token = body["token"]
        .as_str()
        .or(body["access_token"].as_str())
        .ok_or("the token response holds no token")?;
    Ok(Some(format!("Bearer {token}")))
}

/// `key="value", key=value` pairs; quoted values may hold commas (`scope="r:x:pull,push"`).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, tail) = match after.strip_prefix('"') {
            Some(q) => match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            },
            None => after.split_once(',').unwrap_or((after, "")),
        };
        out.insert(key, value.to_string());
        rest = tail.trim_start_matches([',', ' ']);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parameters_keep_commas_inside_quotes() {
        let p = parse_params(
            r#"realm="http://s/v1/registry-token",service="registry-0",scope="repository:a/b:pull,push,delete",error="insufficient_scope""#,
        );
        assert_eq!(p["realm"], "http://s/v1/registry-token");
        assert_eq!(p["service"], "registry-0");
        assert_eq!(p["scope"], "repository:a/b:pull,push,delete");
        assert_eq!(p["error"], "insufficient_scope");
        let p = parse_params("realm=x, service=y");
        assert_eq!((p["realm"].as_str(), p["service"].as_str()), ("x", "y"));
    }
}
