//! The registry notification log: each notification's key (a redelivery changes nothing),
//! what it announced and what the service made of it, for admins (`GET /v1/notifications`).

use super::{Db, DbError};
use crate::clock::now_ms;
use crate::notify::Push;
use route_wire::NotificationView;
use sqlx::Row;

/// Longest text kept of what a registry sent (a digest that is not one can be anything).
const CAP: usize = 300;

fn capped(s: &str) -> String {
    let mut end = s.len().min(CAP);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl Db {
    /// Records a registry notification; false when it was seen before (a redelivery).
    pub async fn first_notification(&self, registry: &str, p: &Push) -> Result<bool, DbError> {
        let digest = match &p.digest {
            Ok(d) => d.to_string(),
            Err(bad) => capped(&bad.value.escape_debug().to_string()),
        };
        let n = sqlx::query(
            "INSERT INTO notifications (registry, event_key, received_at, repository, tag, digest, actor) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(registry)
        .bind(&p.key)
        .bind(now_ms())
        .bind(capped(&p.repository))
        .bind(p.tag.as_str())
        .bind(digest)
        .bind(p.actor.as_deref().map(capped))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Records what the service made of notification `key` of `registry`.
    pub async fn notification_outcome(
        &self,
        registry: &str,
        key: &str,
        outcome: &str,
    ) -> Result<(), DbError> {
        sqlx::query("UPDATE notifications SET outcome = $1 WHERE registry = $2 AND event_key = $3")
            .bind(capped(outcome))
            .bind(registry)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The latest `limit` notifications, newest first, of `registry` if named.
    pub async fn notifications(
        &self,
        registry: Option<&str>,
        limit: i64,
    ) -> Result<Vec<NotificationView>, DbError> {
        let rows = sqlx::query(
            "SELECT registry, event_key, received_at, repository, tag, digest, actor, outcome \
             FROM notifications WHERE ($1 IS NULL OR registry = $1) \
             ORDER BY received_at DESC, event_key LIMIT $2",
        )
        .bind(registry)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NotificationView {
                    registry: r.try_get("registry")?,
                    event_key: r.try_get("event_key")?,
                    received_at: r.try_get("received_at")?,
                    repository: r.try_get("repository")?,
                    tag: r.try_get("tag")?,
                    digest: r.try_get("digest")?,
                    actor: r.try_get("actor")?,
                    outcome: r.try_get("outcome")?,
                })
            })
            .collect()
    }
}
