//! The route service, as a creator's commands reach it.

use crate::cli::{RegistryArgs, RouteArgs};
use anyhow::{Context, Result};
use route_wire::client::Client;
use secrecy::SecretString;
use train_image as image;

/// The API key: `--api-key-file` / `PHT_API_KEY_FILE`, else `PHT_API_KEY`.
pub fn api_key(a: &RouteArgs) -> Result<SecretString> {
    if let Some(p) = &a.api_key_file {
        return Ok(route_wire::client::read_api_key_file(p)?);
    }
    std::env::var("PHT_API_KEY").map(SecretString::from).map_err(|_| {
        anyhow::anyhow!("no API key for the route service: pass --api-key-file FILE, or set PHT_API_KEY_FILE or PHT_API_KEY (the `pht_…` token `route-service creator add` printed)")
    })
}

/// A client as `a.principal` (or `default_id`), if a route service is named.
pub fn client(a: &RouteArgs, default_id: Option<&str>) -> Result<Option<Client>> {
    let Some(url) = &a.url else {
        return Ok(None);
    };
    let id = a.principal.as_deref().or(default_id).context(
        "who are you at the route service? pass --as ID or set PHT_CREATOR_ID (your creator id)",
    )?;
    let opts = route_wire::client::ClientOptions {
        ca_certs: crate::tls::ca_certs(),
        plain_http: a.plain_http,
    };
    Ok(Some(Client::with_options(url, id, &api_key(a)?, &opts)?))
}

/// Like [`client`], for commands that need one.
pub fn required(a: &RouteArgs, default_id: Option<&str>) -> Result<Client> {
    client(a, default_id)?
        .context("no route service: pass --route-service URL or set PHT_ROUTE_SERVICE")
}

/// Registry access that logs in to `host` as the client's principal (the service's registry
/// token auth takes the API key as the password).
pub fn registry_for(
    reg: &RegistryArgs,
    c: &Client,
    key: SecretString,
    host: &str,
) -> image::Registry {
    image::Registry::new(image::RegistryOptions {
        insecure: reg.insecure.clone(),
        credentials: vec![(
            host.to_string(),
            image::Credentials::Basic {
                username: c.principal().to_string(),
                password: key,
            },
        )],
        token_realms: reg
            .token_realms
            .iter()
            .cloned()
            .chain([format!(
                "{}/v1/registry-token",
                c.base().trim_end_matches('/')
            )])
            .collect(),
        ca_certs: crate::tls::ca_certs(),
        ..Default::default()
    })
}
