//! Reading a registry's `WWW-Authenticate` challenge (answered by [`crate::auth`]) with
//! exactly the scope it names.
//! `oci-client` asks for `pull` or `pull,push` only; distribution wants the `delete` action for
//! a manifest DELETE, and says so in its challenge (`scope="repository:r:delete"`). Measured:
//! under token auth every source-tag delete of the route service's mover was refused (401)
//! until deletes answered the challenge itself. Mounts likewise: their challenge names the
//! source's `pull` beside the target's `push`.

use std::collections::HashMap;

/// A `WWW-Authenticate` challenge, as far as this client answers it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// HTTP Basic, to the registry itself.
    Basic,
    /// A token from `realm` for `service` and `scopes`.
    Bearer {
        realm: String,
        service: Option<String>,
        /// distribution names several scopes in one `scope`, space-separated (a mount: the
        /// target's `pull,push` and the source's `pull`); the token protocol asks for one
        /// `scope` each.
        scopes: Vec<String>,
    },
    /// A scheme this client does not speak, or a Bearer challenge without a realm.
    Other,
}

/// Parses a `WWW-Authenticate` value.
pub(crate) fn parse_challenge(challenge: &str) -> Challenge {
    let (scheme, rest) = challenge.trim().split_once(' ').unwrap_or((challenge, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Challenge::Basic;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Challenge::Other;
    }
    let mut params = parse_params(rest);
    let Some(realm) = params.remove("realm") else {
        return Challenge::Other;
    };
    Challenge::Bearer {
        realm,
        service: params.remove("service"),
        scopes: params
            .get("scope")
            .into_iter()
            .flat_map(|v| v.split(' '))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    }
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
        assert_eq!(
            parse_challenge(r#"Bearer realm="r",scope="repository:a:pull repository:b:pull,push""#),
            Challenge::Bearer {
                realm: "r".into(),
                service: None,
                scopes: vec!["repository:a:pull".into(), "repository:b:pull,push".into()]
            }
        );
        assert_eq!(parse_challenge("Bearer service=x"), Challenge::Other);
        assert_eq!(parse_challenge("basic realm=x"), Challenge::Basic);
    }
}
