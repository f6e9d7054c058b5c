//! `route-service admin|station|creator …`: administration on the service's database. API
//! keys are printed once, on stdout, and stored only as hashes.

use crate::cli::{AdminCmd, ApprovalArg, CreatorCmd, PartyArgs, StationCmd};
use anyhow::{bail, Context, Result};
use route_service::auth::{key_hash, new_key};
use route_service::db::{NewCreator, NewStation};
use route_wire::Approval;
use train_lib::keys::public_key_from_file;

/// The party's namespace, public key PEM and fingerprint (its id was checked by the
/// argument parser: the id grammar).
fn party_of(id: &str, p: &PartyArgs) -> Result<(String, String, String)> {
    let k = public_key_from_file(&p.public_key)
        .with_context(|| format!("reading public key {}", p.public_key.display()))?;
    let namespace = p.namespace.clone().unwrap_or_else(|| id.to_string());
    Ok((namespace, k.to_pem(), k.fingerprint()))
}

fn print_key(id: &str, key: &str) {
    pht_term::outln!("{key}");
    eprintln!(
        "This is {id}'s API key; it is shown once and stored only as a hash. Send it as \
         `Authorization: ApiKey {id} <key>`."
    );
}

pub async fn admin(c: AdminCmd) -> Result<()> {
    match c {
        AdminCmd::Add { id, db } => {
            let db = super::open(&db).await?;
            let key = new_key();
            db.add_admin(&id, &key_hash(&id, &key)).await?;
            print_key(&id, &key);
        }
    }
    Ok(())
}

pub async fn station(c: StationCmd) -> Result<()> {
    match c {
        StationCmd::Add {
            id,
            party,
            approval,
            db,
        } => {
            let (namespace, public_key, fingerprint) = party_of(&id, &party)?;
            let db = super::open(&db).await?;
            let key = new_key();
            let s = NewStation {
                id: id.clone(),
                registry: party.registry,
                namespace,
                public_key,
                fingerprint: fingerprint.clone(),
                approval: match approval {
                    ApprovalArg::Auto => Approval::Auto,
                    ApprovalArg::Manual => Approval::Manual,
                },
            };
            db.add_station(&s, &key_hash(&id, &key)).await?;
            eprintln!("station {id} registered ({fingerprint}); inbox {0}/{1}/inbox, outbox {0}/{1}/outbox", s.registry, s.namespace);
            print_key(&id, &key);
        }
        StationCmd::List { json, db } => {
            let db = super::open(&db).await?;
            let views: Vec<_> = db
                .stations()
                .await?
                .iter()
                .map(|s| s.view(120_000))
                .collect();
            if json {
                pht_term::outln!("{}", serde_json::to_string_pretty(&views)?);
            } else {
                pht_term::outln!(
                    "{:<20} {:<8} {:<10} {:<28} FINGERPRINT",
                    "ID",
                    "APPROVAL",
                    "SEEN",
                    "REGISTRY/NAMESPACE"
                );
                for v in views {
                    pht_term::outln!(
                        "{:<20} {:<8} {:<10} {:<28} {}",
                        v.id,
                        v.approval,
                        v.liveness,
                        format!("{}/{}", v.registry, v.namespace),
                        v.fingerprint
                    );
                }
            }
        }
        StationCmd::Remove { id, db } => {
            let db = super::open(&db).await?;
            db.remove_station(&id).await?;
            eprintln!("station {id} removed; its API key no longer works");
        }
        StationCmd::RotateKey { id, db } => {
            let db = super::open(&db).await?;
            if db.station(&id).await?.is_none() {
                bail!("no station `{id}`; `route-service station list` shows those registered");
            }
            let key = new_key();
            db.set_key_hash(&id, &key_hash(&id, &key)).await?;
            print_key(&id, &key);
        }
        StationCmd::AcceptKey {
            id,
            fingerprint,
            db,
        } => {
            let db = super::open(&db).await?;
            let old = db.accept_key(&id, &fingerprint).await?;
            eprintln!("station {id}: key {old} replaced by {fingerprint}");
        }
    }
    Ok(())
}

pub async fn creator(c: CreatorCmd) -> Result<()> {
    match c {
        CreatorCmd::Add { id, party, db } => {
            let (namespace, public_key, fingerprint) = party_of(&id, &party)?;
            let db = super::open(&db).await?;
            let key = new_key();
            let c = NewCreator {
                id: id.clone(),
                registry: party.registry,
                namespace,
                public_key,
                fingerprint: fingerprint.clone(),
            };
            db.add_creator(&c, &key_hash(&id, &key)).await?;
            eprintln!("creator {id} registered ({fingerprint}); submissions {0}/{1}/submissions, results {0}/{1}/results", c.registry, c.namespace);
            print_key(&id, &key);
        }
        CreatorCmd::List { json, db } => {
            let db = super::open(&db).await?;
            let views: Vec<_> = db.creators().await?.iter().map(|c| c.view()).collect();
            if json {
                pht_term::outln!("{}", serde_json::to_string_pretty(&views)?);
            } else {
                pht_term::outln!("{:<20} {:<28} FINGERPRINT", "ID", "REGISTRY/NAMESPACE");
                for v in views {
                    pht_term::outln!(
                        "{:<20} {:<28} {}",
                        v.id,
                        format!("{}/{}", v.registry, v.namespace),
                        v.fingerprint
                    );
                }
            }
        }
    }
    Ok(())
}
