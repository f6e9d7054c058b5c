//! A push counts only for a state that carries the signature of the station whose turn it is,
//! verified here with the keys the parties registered, whatever announced the push (a
//! notification, a report or reconciliation). Without it, anyone able to write into an outbox
//! (a registry operator, a station holding a stale grant) could move a train on with a state
//! no station produced. Only the configuration is read (a few KiB at the top of the train
//! layer, see [`train_image::state_config`]); the files are the next station's to check.
//!
//! Keys are pinned as at submission: the creator's and every station's of the route, as
//! registered now. A station that rotates its key while a train it already signed is still on
//! its route therefore stops that train at its next push, with a reason naming the
//! signature; `docs/security.md` lists this among the residual risks.

use super::{MoveError, Mover};
use crate::db::StationRow;
use route_wire::TrainId;
use std::time::Duration;
use train_image::{Pinned, ReadLimits};
use train_lib::keys::TrustStore;

/// The longest a push's configuration read may take: a few KiB, from a registry the service
/// moves gigabytes through; a registry slower than this is treated as failing (the push is
/// looked at again by the next reconciliation pass).
const CONFIG_READ: Duration = Duration::from_secs(60);

impl Mover {
    /// `Ok(Ok(()))` when the state `p` that `station` pushed for `train` carries exactly the
    /// signatures of the stops up to and including hop `idx` (the station's), all verifying;
    /// `Ok(Err(why))` when it does not; `Err` when the registry or the database failed.
    pub(super) async fn signed_by_turn(
        &self,
        train: &TrainId,
        station: &StationRow,
        idx: i64,
        p: &Pinned,
    ) -> Result<Result<(), String>, MoveError> {
        let Some(t) = self.db.train(train).await? else {
            return Ok(Err(format!("no train `{train}` is known")));
        };
        let Some(creator) = self.db.creator(t.creator.as_str()).await? else {
            return Ok(Err(format!(
                "the creator {} of train {train} is no longer registered",
                t.creator
            )));
        };
        let mut stations = Vec::new();
        for id in &t.route {
            match self.db.station(id).await? {
                Some(s) => stations.push((s.id.to_string(), s.fingerprint)),
                None => {
                    return Ok(Err(format!(
                        "station {id} of the route of train {train} is no longer registered"
                    )))
                }
            }
        }
        let cfg = match train_image::state_config(&self.reg, p, ReadLimits::default(), CONFIG_READ)
            .await
        {
            Ok(Some(c)) => c,
            Ok(None) => {
                return Ok(Err(format!(
                    "the image {} has no train configuration in its top layer; only a station's signed state counts",
                    p.reference
                )))
            }
            Err(e) if e.is_rejection() => {
                return Ok(Err(format!(
                    "the configuration of {} could not be read: {e}",
                    p.reference
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let creator = (creator.id.to_string(), creator.fingerprint);
        let signed = tokio::task::spawn_blocking(move || {
            let pins: Vec<(&str, &str)> = stations
                .iter()
                .map(|(i, f)| (i.as_str(), f.as_str()))
                .collect();
            let trust = TrustStore::pinned(&[(&creator.0, &creator.1)], &pins);
            train_lib::signed_state(&cfg, &trust)
        })
        .await
        .map_err(|e| MoveError::Reference(format!("signature check panicked: {e}")))?;
        let s = match signed {
            Ok(s) => s,
            Err(e) => {
                return Ok(Err(format!(
                "the state {station_id} pushed does not verify against the registered keys: {e}",
                station_id = station.id
            )))
            }
        };
        let want = usize::try_from(idx).unwrap_or(usize::MAX).saturating_add(1);
        Ok(if s.train_id != train.as_str() {
            Err(format!(
                "the state pushed as train {train} is signed as train {}",
                s.train_id.escape_debug()
            ))
        } else if !s.route.iter().eq(t.route.iter().map(|r| r.as_str())) {
            Err(format!(
                "the state pushed for train {train} is signed for another route ({})",
                s.route.join(" → ").escape_debug()
            ))
        } else if s.stops_done != want {
            Err(format!(
                "the state pushed by {} carries {} verified stop signature(s); as stop {want} of train {train} it must carry {want}, the last one its own",
                station.id, s.stops_done
            ))
        } else {
            Ok(())
        })
    }
}
