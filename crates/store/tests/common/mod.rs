//! Helpers shared by the store's integration tests: a database per test on
//! each back end, and a runner over every reachable back end.
//!
//! PostgreSQL is found at `GUILDSCOPE_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it cannot be reached,
//! the PostgreSQL half fails under CI (`CI` set) and says it skipped
//! otherwise.

// Each test file compiles this module on its own and uses a part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use guildscope_store::{Location, Store};

/// A database for one test, removed afterwards.
pub struct Db {
    pub name: &'static str,
    pub location: Location,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((admin, db)) = &self.drop_pg
            && let Ok(mut client) = postgres::Client::connect(admin, postgres::NoTls)
        {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
        }
    }
}

impl Db {
    pub fn open(&self) -> Store {
        Store::open(&self.location).unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }
}

pub fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Sqlite(dir.path().join("stats.db"));
    Db {
        name: "sqlite",
        location,
        _dir: Some(dir),
        drop_pg: None,
    }
}

pub fn postgres() -> Option<Db> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let admin = std::env::var("GUILDSCOPE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut client = match postgres::Client::connect(&admin, postgres::NoTls) {
        Ok(client) => client,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL is required in CI and unreachable at {admin}: {e}")
        }
        Err(e) => {
            eprintln!("skipping the PostgreSQL half: {admin} is unreachable ({e})");
            return None;
        }
    };
    let db = format!(
        "guildscope_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    client
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    let url = format!("{base}/{db}");
    Some(Db {
        name: "postgres",
        location: Location::parse(&url),
        _dir: None,
        drop_pg: Some((admin, db)),
    })
}

/// Runs `check` against every reachable back end.
pub fn each_backend(check: impl Fn(&Db)) {
    check(&sqlite());
    if let Some(db) = postgres() {
        check(&db);
    }
}
