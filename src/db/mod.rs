//! The database layer: connection pool, per-connection settings, the one
//! write path, and numbered migrations. Every SQL statement of the program
//! lives under `src/db/`; nothing here knows about HTTP.
//!
//! SQLite allows one writer at a time. In-process writers queue for the one
//! writer connection and then open `BEGIN IMMEDIATE` transactions, so
//! `database is locked` never reaches a client; the busy timeout covers the
//! other process (Flexisip) holding the file briefly. Readers take pooled
//! connections, each `read` being one read transaction.

pub mod accounts;
pub mod auth;
pub mod dictionary;
pub mod health;
pub mod maintenance;
pub mod tokens;
pub mod web;
mod writer;

use crate::error::{AppError, AppResult};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole current schema, applied to a new database.
pub const SCHEMA: &str = include_str!("../../schema.sql");

/// The schema version this binary writes. Bump it with each entry of `UPGRADES`.
pub const SCHEMA_VERSION: i64 = 3;

/// `UPGRADES[n]` upgrades a database from version `n + 1` to `n + 2`.
/// Later schema changes are appended here (and folded into schema.sql).
const UPGRADES: &[&str] = &[
    // 2: an external account's realm, registrar, outbound proxy and transport.
    "ALTER TABLE external_accounts ADD COLUMN realm VARCHAR(64);
     ALTER TABLE external_accounts ADD COLUMN registrar VARCHAR(255);
     ALTER TABLE external_accounts ADD COLUMN outbound_proxy VARCHAR(255);
     ALTER TABLE external_accounts ADD COLUMN protocol VARCHAR(4);",
    // 3: nonces keyed by the nonce, without a rowid (one page per write).
    // Nonces live minutes: outstanding ones are dropped, clients get a new
    // challenge.
    "DROP TABLE nonces;
     CREATE TABLE nonces (
         nonce VARCHAR(64) PRIMARY KEY NOT NULL,
         account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
         opaque VARCHAR(64) NOT NULL,
         nc INTEGER NOT NULL DEFAULT 0,
         created_at DATETIME NOT NULL,
         updated_at DATETIME NOT NULL
     ) WITHOUT ROWID;",
];

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a background checkpoint waits for readers (writers wait too).
const CHECKPOINT_WAIT: Duration = Duration::from_millis(10);

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

/// A statement's text built by `format!` once, on first use (statements
/// naming the same column list), then borrowed for the process's life.
macro_rules! static_sql {
    ($($format:tt)*) => {{
        static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        SQL.get_or_init(|| format!($($format)*)).as_str()
    }};
}
pub(crate) use static_sql;

pub struct Db {
    /// Connections for reading, one per HTTP worker.
    pool: Pool,
    /// The one connection that writes. Being the only in-process writer,
    /// its page cache stays valid from one write to the next (SQLite drops
    /// a connection's cache whenever another connection has committed).
    writer: writer::Writer,
    path: PathBuf,
}

fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // A small page cache per connection: the OS caches the file anyway, and
    // the server's memory stays flat however many accounts there are.
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -512;")?;
    // No checkpoint inside a commit: the automatic one fsyncs while the
    // writer waits, a stall of milliseconds every few hundred writes. The
    // server's janitor checkpoints in the background instead (`checkpoint`),
    // and SQLite checkpoints when a command-line run closes the file.
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
    // When the WAL starts over, a file grown by a burst is cut back.
    conn.execute_batch("PRAGMA journal_size_limit = 16777216;")?;
    // Room for every statement the server runs, so none is ever re-parsed.
    conn.set_prepared_statement_cache_capacity(256);
    Ok(())
}

/// What `migrate` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Migration {
    Created,
    Upgraded { from: i64, to: i64 },
    UpToDate,
}

/// Creates or upgrades the schema; refuses a database newer than the binary.
pub fn migrate(conn: &mut Connection) -> Result<Migration, String> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| format!("cannot read the database: {e}"))?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "the database has schema version {version}, newer than this flexiapi ({SCHEMA_VERSION}): upgrade flexiapi"
        ));
    }
    if version == SCHEMA_VERSION {
        return Ok(Migration::UpToDate);
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| format!("cannot lock the database for migration: {e}"))?;
    let result = if version == 0 {
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'accounts'", [], |r| {
                r.get(0)
            })
            .map_err(|e| e.to_string())?;
        if tables > 0 {
            return Err("the database already holds an `accounts` table but no flexiapi schema version: \
                        refusing to touch it (import it into a new file instead)"
                .to_string());
        }
        tx.execute_batch(SCHEMA).map_err(|e| format!("cannot create the schema: {e}"))?;
        Migration::Created
    } else {
        for (index, step) in UPGRADES.iter().enumerate().skip((version - 1) as usize) {
            tx.execute_batch(step).map_err(|e| format!("upgrade to version {} failed: {e}", index + 2))?;
        }
        Migration::Upgraded { from: version, to: SCHEMA_VERSION }
    };
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}")).map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| format!("cannot commit the migration: {e}"))?;
    Ok(result)
}

impl Db {
    /// Opens (creating if needed) the file, switches it to WAL, migrates.
    pub fn open(path: &Path, pool_size: u32) -> Result<(Db, Migration), String> {
        create_group_writable(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        configure(&mut conn).map_err(|e| format!("cannot configure {}: {e}", path.display()))?;
        // WAL is stored in the file, so Flexisip's connections inherit it.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| format!("cannot switch {} to WAL: {e}", path.display()))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("{} refused WAL mode (got {mode})", path.display()));
        }
        let migration = migrate(&mut conn).map_err(|e| format!("{}: {e}", path.display()))?;
        let manager = SqliteConnectionManager::file(path).with_init(|c| configure(c));
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(2))
            .min_idle(Some(1))
            // A local file does not go stale like a network connection:
            // skip r2d2's per-checkout validity query.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(|e| format!("cannot open a connection pool on {}: {e}", path.display()))?;
        Ok((Db { pool, writer: writer::Writer::new(conn), path: path.to_path_buf() }, migration))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn connection(&self) -> AppResult<r2d2::PooledConnection<SqliteConnectionManager>> {
        Ok(self.pool.get()?)
    }

    /// Runs read-only queries on a pooled connection, all in one read
    /// transaction: they see one state of the database, and the connection
    /// checks for other connections' commits (and reloads the pages they
    /// changed) once rather than once per query.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> AppResult<T> {
        let conn = self.connection()?;
        if !conn.is_autocommit() {
            // Left open by a reader that panicked: start from a clean state.
            conn.cached_execute("ROLLBACK", [])?;
        }
        conn.cached_execute("BEGIN", [])?;
        let value = f(&conn);
        // Ending a read transaction cannot lose anything: a failed COMMIT
        // only matters when the queries themselves succeeded.
        let end = conn.cached_execute(if value.is_ok() { "COMMIT" } else { "ROLLBACK" }, []);
        let value = value?;
        end?;
        Ok(value)
    }

    /// Runs `f` as one transaction's worth of changes, committed when `f`
    /// returns `Ok` and undone otherwise (nothing half-written). Writers
    /// queued at the same moment share one commit (see `writer`); each
    /// returns only once its changes are committed.
    pub fn write<T>(&self, f: impl FnOnce(&Connection) -> AppResult<T>) -> AppResult<T> {
        self.writer.write(f)
    }

    /// Like `write`, but returns once `f` has run, before the commit: for
    /// writes whose loss (a failed commit, a crash) costs only a retry. See
    /// `Writer::write_async_commit`.
    pub fn write_async_commit<T>(&self, f: impl FnOnce(&Connection) -> AppResult<T>) -> AppResult<T> {
        self.writer.write_async_commit(f)
    }

    /// (write jobs run, transactions committed) since start.
    pub fn write_counts(&self) -> (u64, u64) {
        self.writer.counts()
    }

    /// Copies the WAL back into the database file, so the WAL stays small.
    ///
    /// Two steps. First a PASSIVE checkpoint on a reader connection, while
    /// writes go on: it copies what the WAL holds and syncs the file, the
    /// long part (tens of milliseconds on a busy disk). Then a RESTART on the
    /// writer connection, with no write in progress: it copies only what
    /// was committed meanwhile, and the next commit starts the WAL over from
    /// its beginning instead of growing it (under a steady write load it
    /// would otherwise never stop growing).
    ///
    /// RESTART rather than PASSIVE for the second step: it also waits for
    /// readers still on old WAL frames to move on, so the restart really
    /// happens; but only briefly (`CHECKPOINT_WAIT`), since writers wait
    /// meanwhile and a long reader (a backup) must not stall them: then it
    /// is tried next time.
    pub fn checkpoint(&self) -> AppResult<()> {
        let copied = self.connection()?.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        ignore_busy(copied)?;
        let restarted = self.writer.idle(|conn| -> rusqlite::Result<()> {
            conn.busy_timeout(CHECKPOINT_WAIT)?;
            let outcome = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
            conn.busy_timeout(BUSY_TIMEOUT)?;
            outcome
        });
        ignore_busy(restarted)
    }

    /// An online, consistent copy through SQLite's backup API. The whole
    /// copy is one step (one read transaction): with WAL, writers go on
    /// meanwhile, and a busy server cannot keep restarting a copy made in
    /// small steps.
    pub fn backup_to(&self, destination: &Path) -> AppResult<()> {
        let conn = self.connection()?;
        Ok(backup(&conn, destination)?)
    }
}

/// A checkpoint that found the database busy is simply tried next time.
fn ignore_busy(outcome: rusqlite::Result<()>) -> AppResult<()> {
    match outcome {
        Ok(())
        | Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error { code: rusqlite::ErrorCode::DatabaseBusy, .. },
            _,
        )) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Copies the main database of `conn` into `destination` in one backup step.
pub fn backup(conn: &Connection, destination: &Path) -> rusqlite::Result<()> {
    let mut target = Connection::open(destination)?;
    let backup = rusqlite::backup::Backup::new(conn, &mut target)?;
    // step(-1) copies every page at once; Busy/Locked (another process
    // holding a lock) are retried for up to the busy timeout.
    let started = std::time::Instant::now();
    loop {
        match backup.step(-1)? {
            rusqlite::backup::StepResult::Done => break,
            rusqlite::backup::StepResult::More => {}
            _ if started.elapsed() > BUSY_TIMEOUT => {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some("the database stayed locked".into()),
                ))
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    drop(backup);
    target.close().map_err(|(_, e)| e)
}

/// Opens an existing database file for reading, without creating or
/// migrating it (`backup`, `doctor`).
pub fn open_existing(path: &Path) -> Result<Connection, String> {
    if !path.exists() {
        return Err(format!("{} does not exist", path.display()));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| format!("cannot configure {}: {e}", path.display()))?;
    Ok(conn)
}

/// Creates a missing database file with mode 0666 minus the umask. SQLite
/// would create it 0644 whatever the umask, and gives the `-wal`/`-shm` files
/// the database's mode: under the unit's `UMask=0007` the three files are
/// then 0660, writable by the group Flexisip shares.
fn create_group_writable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o666).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Converts "no row" into `None` for single-row lookups.
/// `query_row` and `execute` through the connection's statement cache: the
/// same few statements run on every request, so each is parsed once per
/// pooled connection instead of once per call.
pub trait Cached {
    fn cached_row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
    fn cached_execute<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl Cached for Connection {
    fn cached_row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    fn cached_execute<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}

/// Most ids one `IN (...)` list binds: far below SQLite's 32766 variables.
pub const IN_CHUNK: usize = 500;

/// List sizes an `IN (...)` statement is prepared for; a list is padded up
/// to the next size by repeating its last id (harmless in `IN`), so the
/// statement cache holds a handful of shapes instead of one per length.
const IN_SIZES: [usize; 6] = [1, 4, 16, 64, 200, IN_CHUNK];

/// Runs `sql`, whose `{in}` stands for a bound `?,?,…` list, over `ids`
/// (deduplicated, in chunks of at most `IN_CHUNK`), collecting every row
/// through `f`. Rows come in the statement's order within each chunk.
pub fn query_in<T>(
    conn: &Connection,
    sql: &'static str,
    ids: &[i64],
    mut f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut unique = ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let mut out = Vec::new();
    for chunk in unique.chunks(IN_CHUNK) {
        let size = IN_SIZES.iter().copied().find(|n| *n >= chunk.len()).unwrap_or(IN_CHUNK);
        let mut stmt = conn.prepare_cached(&with_in_list(sql, size))?;
        let last = chunk[chunk.len() - 1];
        let bound = chunk.iter().copied().chain(std::iter::repeat(last)).take(size);
        let mut rows = stmt.query(rusqlite::params_from_iter(bound))?;
        while let Some(row) = rows.next()? {
            out.push(f(row)?);
        }
    }
    Ok(out)
}

/// `sql` with `{in}` replaced by `size` placeholders, built once per
/// thread: the statement is looked up by its text on every call, and
/// building the text each time cost more than running a one-row query.
/// Keyed by the template's address and length, which a `&'static str` keeps.
fn with_in_list(sql: &'static str, size: usize) -> std::rc::Rc<str> {
    thread_local! {
        static RENDERED: std::cell::RefCell<std::collections::HashMap<(usize, usize, usize), std::rc::Rc<str>>> =
            Default::default();
    }
    RENDERED.with(|cache| {
        let key = (sql.as_ptr() as usize, sql.len(), size);
        if let Some(text) = cache.borrow().get(&key) {
            return text.clone();
        }
        let list = vec!["?"; size].join(",");
        let text: std::rc::Rc<str> = sql.replace("{in}", &list).into();
        cache.borrow_mut().insert(key, text.clone());
        text
    })
}

/// `query_in` for rows that belong to an account: `f` gives each row's
/// account id with its value, and the values come back listed by account
/// (in the statement's order).
pub fn query_in_by_account<T>(
    conn: &Connection,
    sql: &'static str,
    account_ids: &[i64],
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<(i64, T)>,
) -> rusqlite::Result<std::collections::HashMap<i64, Vec<T>>> {
    let mut by_account: std::collections::HashMap<i64, Vec<T>> = std::collections::HashMap::new();
    for (account_id, value) in query_in(conn, sql, account_ids, f)? {
        by_account.entry(account_id).or_default().push(value);
    }
    Ok(by_account)
}

pub fn optional<T>(result: rusqlite::Result<T>) -> rusqlite::Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Is this error a UNIQUE constraint violation (a race lost to another writer)?
pub fn is_unique_violation(e: &AppError) -> bool {
    matches!(e, AppError::Internal(detail) if detail.contains("UNIQUE constraint failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table's columns and every index, as SQLite reports them.
    fn shape(conn: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        let mut tables = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap();
        let names: Vec<String> = tables.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        for table in names {
            let mut columns = conn.prepare(&format!("PRAGMA table_info(\"{table}\")")).unwrap();
            let described = columns
                .query_map([], |r| {
                    Ok(format!(
                        "{}.{} {} notnull={} pk={}",
                        table,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(5)?
                    ))
                })
                .unwrap();
            out.extend(described.map(Result::unwrap));
        }
        let mut indexes =
            conn.prepare("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' ORDER BY name").unwrap();
        out.extend(
            indexes
                .query_map([], |r| Ok(format!("index {} on {}", r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .unwrap()
                .map(Result::unwrap),
        );
        out
    }

    #[test]
    fn upgrading_a_version_1_database_gives_the_current_schema() {
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        let mut old = Connection::open_in_memory().unwrap();
        migrate(&mut old).unwrap();
        // Version 1: no external account details, rowid nonces with two indexes.
        old.execute_batch(
            "ALTER TABLE external_accounts DROP COLUMN realm;
             ALTER TABLE external_accounts DROP COLUMN registrar;
             ALTER TABLE external_accounts DROP COLUMN outbound_proxy;
             ALTER TABLE external_accounts DROP COLUMN protocol;
             DROP TABLE nonces;
             CREATE TABLE nonces (
                 id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
                 account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
                 nonce VARCHAR(64) NOT NULL,
                 opaque VARCHAR(64) NOT NULL,
                 nc INTEGER NOT NULL DEFAULT 0,
                 created_at DATETIME NOT NULL,
                 updated_at DATETIME NOT NULL
             );
             CREATE UNIQUE INDEX nonces_nonce_unique ON nonces(nonce);
             CREATE INDEX nonces_created_at_index ON nonces(created_at);
             INSERT INTO nonces (nonce, opaque, created_at, updated_at) VALUES ('n', 'o', '2024-01-01 00:00:00', '2024-01-01 00:00:00');
             PRAGMA user_version = 1;",
        )
        .unwrap();
        assert_ne!(shape(&old), shape(&fresh));
        assert_eq!(migrate(&mut old), Ok(Migration::Upgraded { from: 1, to: SCHEMA_VERSION }));
        // sqlite_sequence keeps the row the old AUTOINCREMENT left behind.
        old.execute_batch("DELETE FROM sqlite_sequence WHERE name = 'nonces'").ok();
        assert_eq!(shape(&old), shape(&fresh));
    }
}
