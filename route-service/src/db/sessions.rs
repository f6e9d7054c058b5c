//! Dashboard sessions: a signed-in principal's cookie, stored as the SHA-256 of its token and
//! valid only while the principal's API key is the one it signed in with (a rotated or removed
//! key ends every session of it, with no list to keep).

use super::{parse_col, Db, DbError};
use route_wire::{PrincipalId, Role};
use sqlx::Row;

impl Db {
    /// Records a session of `principal` (whose stored key hash is `key_hash`) until
    /// `expires_at` (ms). Expired sessions are removed on the way.
    pub async fn create_session(
        &self,
        token_hash: &str,
        principal: &str,
        key_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), DbError> {
        sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO ui_sessions (token_hash, principal, key_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(principal)
        .bind(key_hash)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The principal of the session `token_hash`, if it has not expired and the principal's
    /// key is still the one it signed in with.
    pub async fn session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<(PrincipalId, Role)>, DbError> {
        let row = sqlx::query(
            "SELECT s.principal, p.role FROM ui_sessions s JOIN principals p ON p.id = s.principal \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.key_hash = p.key_hash",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let id: String = r.try_get("principal")?;
            let id = id
                .parse::<PrincipalId>()
                .map_err(|e| DbError::Corrupt(format!("ui_sessions.principal: {e}")))?;
            Ok((id, parse_col(&r, "role")?))
        })
        .transpose()
    }

    /// Ends the session `token_hash` (sign-out).
    pub async fn end_session(&self, token_hash: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM ui_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
