//! Past runs and the audit log, both read from the log after checking its chain and signed
//! head, as `station audit verify` does. A log that fails the check says so at the top, in
//! words, and its records are still shown (read without the check) so the operator can see
//! where it breaks.

use super::page::{self, text, Flash};
use super::session::Operator;
use super::St;
use axum::extract::State;
use axum::response::Response;
use maud::{html, Markup};
use station::audit::{read_chain, AuditLog, Record, RecordKind};

/// Records shown at most, newest first: a page, not the whole history (which
/// `station audit verify` and the file hold).
const SHOWN: usize = 200;

fn kind(k: RecordKind) -> Markup {
    let (word, class) = match k {
        RecordKind::Started => ("started", "moving"),
        RecordKind::Pushed => ("pushed", "ok"),
        RecordKind::Rejected => ("rejected", "bad"),
        RecordKind::TrainFailed => ("train failed", "bad"),
        RecordKind::Error => ("error", "bad"),
        RecordKind::Interrupted => ("interrupted", "pending"),
        RecordKind::KeyRotated => ("key rotated", "idle"),
    };
    html! { span class={"state " (class)} { (word) } }
}

/// The log's records and the verdict of its check.
fn read(ui: &St) -> Result<(Vec<Record>, Flash), Flash> {
    let Some(path) = ui.cfg.audit.log.as_deref() else {
        return Err(Flash::error(
            "This station has no [audit] log in its configuration.",
        ));
    };
    let log = AuditLog::new(path);
    // The public half kept from the last check: no private key read (and no password's key
    // derivation) per page. Only when it no longer verifies (the watcher took a rotated key
    // into use) is the key file read again.
    let cached = ui
        .audit_key
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut checked = cached.as_ref().map(|k| log.verify(k));
    if !matches!(checked, Some(Ok(_))) {
        let key = train_lib::keys::PrivateKey::from_file_with_password_env(
            &ui.key_path,
            ui.cfg.station.key_password_env.as_deref(),
        )
        .map_err(|e| {
            Flash::error(format!(
                "The station key, to check the log's signed head: {e}"
            ))
        })?;
        let public = key.public().clone();
        if cached.as_ref() != Some(&public) {
            checked = Some(log.verify(&public));
            *ui.audit_key.lock().unwrap_or_else(|p| p.into_inner()) = Some(public);
        }
    }
    // Verified with the cached key, or with the key just read (which is then cached).
    match checked.expect("set above when nothing was cached") {
        Ok(records) => {
            let n = records.len();
            Ok((
                records,
                Flash::info(format!(
                    "{}: {n} records, chain and signed head intact.",
                    path.display()
                )),
            ))
        }
        Err(e) => {
            let records = read_chain(path).unwrap_or_default();
            Ok((
                records,
                Flash::error(format!(
                    "{} FAILED its check: {e}. Runs stop until it is dealt with (see the README's audit section).",
                    path.display()
                )),
            ))
        }
    }
}

/// `GET /history`: the runs' decisions, newest first.
pub async fn history(State(ui): State<St>, op: Operator) -> Response {
    let (records, verdict) = match read(&ui) {
        Ok(x) => x,
        Err(f) => return page::page(&ui.station, &op.csrf, "Past runs", Some(&f), html! {}),
    };
    let decided: Vec<&Record> = records
        .iter()
        .rev()
        .filter(|r| !matches!(r.decision, RecordKind::Started | RecordKind::KeyRotated))
        .take(SHOWN)
        .collect();
    let body = html! {
        h1 { "Past runs" }
        p.hint { "From the audit log, newest first (at most " (SHOWN) ")." }
        @if decided.is_empty() {
            p.empty { "No run has ended at this station yet." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "When (UTC)" } th scope="col" { "Train" } th scope="col" { "Decision" }
                    th scope="col" { "Exit code" } th scope="col" { "Why, or what was pushed" }
                } }
                tbody {
                    @for r in &decided {
                        tr {
                            td { (r.time) }
                            td { code { (text(r.train_id.as_deref().unwrap_or("(unknown)"))) } }
                            td { (kind(r.decision)) }
                            td { @if let Some(c) = r.exit_code { (c) } @else { "—" } }
                            td {
                                @if let Some(why) = &r.reason { span.reason { (text(why)) } }
                                @else if let Some(d) = &r.digest_out { code { (text(d)) } }
                            }
                        }
                    }
                }
            }
        }
    };
    page::page(&ui.station, &op.csrf, "Past runs", Some(&verdict), body)
}

/// `GET /audit`: the log itself, newest first, with its verification.
pub async fn log(State(ui): State<St>, op: Operator) -> Response {
    let (records, verdict) = match read(&ui) {
        Ok(x) => x,
        Err(f) => return page::page(&ui.station, &op.csrf, "Audit log", Some(&f), html! {}),
    };
    let body = html! {
        h1 { "Audit log" }
        p.hint { "Each record carries the hash of the one before; the head is signed with the station key. Newest first (at most " (SHOWN) " of " (records.len()) ")." }
        table {
            thead { tr {
                th scope="col" { "#" } th scope="col" { "When (UTC)" } th scope="col" { "Record" }
                th scope="col" { "Train" } th scope="col" { "Image in → out" } th scope="col" { "Hash" }
            } }
            tbody {
                @for r in records.iter().rev().take(SHOWN) {
                    tr {
                        td { (r.seq) }
                        td { (r.time) }
                        td { (kind(r.decision)) }
                        td { code { (text(r.train_id.as_deref().unwrap_or("—"))) } }
                        td {
                            code { (text(r.digest_in.as_deref().unwrap_or("—"))) }
                            @if let Some(o) = &r.digest_out { " → " code { (text(o)) } }
                        }
                        td { code title=(r.hash) { (r.hash.get(..12).unwrap_or(&r.hash)) "…" } }
                    }
                }
            }
        }
    };
    page::page(&ui.station, &op.csrf, "Audit log", Some(&verdict), body)
}
