//! The two migration folders define one schema: the same tables, columns (kind, nullability,
//! primary key) and indexes, whichever database the service runs on. They differ in one
//! spelling only, an auto-increment id, and a change made to one file alone fails here.

use route_service::db::Db;
use sqlx::Row;
use std::collections::BTreeMap;

const SQLITE: &str = include_str!("../migrations/sqlite/0001_init.sql");
const POSTGRES: &str = include_str!("../migrations/postgres/0001_init.sql");

#[test]
fn the_migration_files_differ_only_in_the_auto_increment_id() {
    let pg = POSTGRES.replace(
        "id BIGSERIAL PRIMARY KEY",
        "id INTEGER PRIMARY KEY AUTOINCREMENT",
    );
    assert_eq!(
        pg, SQLITE,
        "migrations/postgres and migrations/sqlite define different schemas"
    );
}

/// Per table, per column: (kind `text`/`integer`, not null, part of the primary key).
type Columns = BTreeMap<String, BTreeMap<String, (String, bool, bool)>>;

fn kind(t: &str) -> String {
    let t = t.to_lowercase();
    if t.contains("int") {
        "integer".into()
    } else if t.contains("text") || t.contains("char") {
        "text".into()
    } else {
        t
    }
}

async fn sqlite_schema(db: &Db) -> (Columns, Vec<String>) {
    let mut cols = Columns::new();
    let tables: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("name"))
    .collect();
    for t in tables {
        for r in sqlx::query(&format!("PRAGMA table_info({t})"))
            .fetch_all(db.pool())
            .await
            .unwrap()
        {
            let (name, ty): (String, String) = (r.get("name"), r.get("type"));
            let (notnull, pk): (i64, i64) = (r.get("notnull"), r.get("pk"));
            cols.entry(t.clone())
                .or_default()
                .insert(name, (kind(&ty), notnull == 1 || pk == 1, pk > 0));
        }
    }
    let mut idx: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("name"))
    .collect();
    idx.sort();
    (cols, idx)
}

async fn postgres_schema(db: &Db) -> (Columns, Vec<String>) {
    let mut cols = Columns::new();
    for r in sqlx::query(
        "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name, \
           c.data_type::text AS data_type, c.is_nullable::text AS is_nullable, \
           (SELECT COUNT(*) FROM information_schema.key_column_usage k \
              JOIN information_schema.table_constraints tc ON tc.constraint_name = k.constraint_name \
             WHERE tc.constraint_type = 'PRIMARY KEY' AND k.table_name = c.table_name \
               AND k.column_name = c.column_name) AS pk \
         FROM information_schema.columns c \
         WHERE c.table_schema = 'public' AND c.table_name NOT LIKE '_sqlx%'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    {
        let (t, name, ty, nullable): (String, String, String, String) = (
            r.get("table_name"),
            r.get("column_name"),
            r.get("data_type"),
            r.get("is_nullable"),
        );
        let pk: i64 = r.get("pk");
        cols.entry(t)
            .or_default()
            .insert(name, (kind(&ty), nullable == "NO", pk > 0));
    }
    let mut idx: Vec<String> = sqlx::query(
        "SELECT indexname::text AS indexname FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("indexname"))
    .collect();
    idx.sort();
    (cols, idx)
}

#[tokio::test]
async fn both_databases_hold_the_same_tables_columns_and_indexes_once_migrated() {
    let Ok(base) = std::env::var("PHT_TEST_POSTGRES_URL") else {
        eprintln!(
            "SKIPPED: set PHT_TEST_POSTGRES_URL (scripts/postgres.sh) to compare with PostgreSQL"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Db::open(&format!("sqlite:{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    let name = format!("state_schema_{}", std::process::id());
    let pg = Db::open(&Db::create_database(&base, &name).await.unwrap())
        .await
        .unwrap();
    let (s_cols, s_idx) = sqlite_schema(&sqlite).await;
    let (p_cols, p_idx) = postgres_schema(&pg).await;
    assert!(
        s_cols.contains_key("hops") && s_cols["hops"].len() > 10,
        "{s_cols:#?}"
    );
    assert_eq!(
        s_cols, p_cols,
        "columns differ between SQLite and PostgreSQL"
    );
    assert_eq!(s_idx, p_idx, "indexes differ");
}
