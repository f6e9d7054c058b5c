//! What the commands that speak to the route service share: the configuration, the station's
//! id and a client holding its API key.

use crate::cli::ServiceArgs;
use anyhow::{Context, Result};
use route_wire::client::Client;
use station::config::StationConfig;

/// The station as the service commands see it.
pub struct Ctx {
    /// Its configuration (defaults without --config).
    pub cfg: StationConfig,
    /// Its id.
    pub station: route_wire::StationId,
}

impl Ctx {
    /// Reads the configuration and the station id.
    pub fn load(a: &ServiceArgs) -> Result<Self> {
        let mut cfg = match &a.config {
            Some(p) => StationConfig::load(p)?,
            None => StationConfig::default(),
        };
        if let Some(u) = &a.route_service {
            cfg.watch.route_service = Some(u.clone());
        }
        // The route service issues the registry tokens: its realm is a configured host.
        if let Some(u) = &cfg.watch.route_service {
            let realm = format!("{}/v1/registry-token", u.trim_end_matches('/'));
            cfg.registry.token_realms.push(realm);
        }
        let station = a
            .station
            .clone()
            .or_else(|| cfg.station.id.clone())
            .context(
                "no station id: pass --station, set STATION_ID, or [station] id in the config",
            )?
            .parse()
            .map_err(|e| anyhow::anyhow!("the station id: {e}"))?;
        Ok(Self { cfg, station })
    }

    /// A client of the route service, as this station.
    pub fn client(&self) -> Result<Client> {
        let url = self.cfg.watch.route_service.as_deref().context(
            "no route service: pass --route-service URL, set STATION_ROUTE_SERVICE, or [watch] route_service in the config",
        )?;
        let key = self.cfg.watch.api_key()?;
        Ok(Client::with_options(
            url,
            &self.station,
            &key,
            &self.cfg.client_options(),
        )?)
    }
}
