//! The one writer connection, with group commit.
//!
//! Every in-process write runs on one connection, one job at a time. When
//! writers queue up, a job that finds the writer busy joins the transaction
//! already open instead of starting its own: each joining job runs in a
//! savepoint (a failing job undoes only its own changes; the first job of a
//! transaction needs none, its failure rolls the transaction back), and the
//! transaction commits when no other writer is waiting or the batch is
//! full. A caller
//! gets its answer only after that commit, so an acknowledged write is a
//! committed write, exactly as with one transaction per job.
//!
//! Why: under load one commit now carries many jobs, so fewer WAL frames
//! are written and, above all, the readers' page caches (SQLite drops a
//! connection's whole cache whenever another connection has committed)
//! are dropped once per batch instead of once per write.

use crate::db::Cached;
use crate::error::AppResult;
use rusqlite::{ffi, Connection};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// Most jobs one transaction carries: bounds how long the first job of a
/// batch waits for its commit while others keep joining.
const MAX_BATCH: u32 = 32;

/// Why a batch's commit failed, kept to give every job of the batch the
/// same error (disk full must stay a 503 for all of them).
#[derive(Clone)]
struct CommitFailure {
    code: ffi::Error,
    message: Option<String>,
}

impl From<rusqlite::Error> for CommitFailure {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqliteFailure(code, message) => CommitFailure { code, message },
            other => CommitFailure { code: ffi::Error::new(ffi::SQLITE_ERROR), message: Some(other.to_string()) },
        }
    }
}

impl From<CommitFailure> for rusqlite::Error {
    fn from(f: CommitFailure) -> Self {
        rusqlite::Error::SqliteFailure(f.code, f.message)
    }
}

/// One transaction's jobs wait here for its commit.
#[derive(Default)]
struct Batch {
    outcome: Mutex<Outcome>,
    committed: Condvar,
}

#[derive(Default)]
struct Outcome {
    result: Option<Result<(), CommitFailure>>,
    /// Jobs sleeping in `wait`: the commit wakes them only if there are some
    /// (a wake-up is a system call even with nobody to wake).
    sleepers: usize,
}

impl Batch {
    fn finish(&self, result: Result<(), CommitFailure>) {
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        outcome.result = Some(result);
        if outcome.sleepers > 0 {
            self.committed.notify_all();
        }
    }

    /// The commit's outcome if it is known already.
    fn outcome(&self) -> Option<Result<(), CommitFailure>> {
        self.outcome.lock().unwrap_or_else(PoisonError::into_inner).result.clone()
    }

    fn wait(&self) -> Result<(), CommitFailure> {
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(done) = outcome.result.as_ref() {
                return done.clone();
            }
            outcome.sleepers += 1;
            outcome = self.committed.wait(outcome).unwrap_or_else(PoisonError::into_inner);
            outcome.sleepers -= 1;
        }
    }
}

struct State {
    conn: Connection,
    /// The open transaction, if any, and how many jobs it holds.
    open: Option<(Arc<Batch>, u32)>,
}

impl State {
    /// Commits the open transaction (if any) and tells its jobs; false when
    /// the commit failed.
    fn commit(&mut self) -> bool {
        let Some((batch, _)) = self.open.take() else { return true };
        let outcome = self.conn.cached_execute("COMMIT", []).map(|_| ()).map_err(CommitFailure::from);
        if outcome.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        let ok = outcome.is_ok();
        batch.finish(outcome);
        ok
    }
}

/// What a failing job undoes.
#[derive(Clone, Copy)]
enum Undo {
    /// All of its changes: it runs in its own savepoint.
    Job,
    /// Only the failing statement (SQLite does that by itself).
    Statement,
}

pub struct Writer {
    state: Mutex<State>,
    /// Writers queued for the lock: while there are some, the transaction
    /// stays open for them.
    waiting: AtomicUsize,
    /// Whether the last commit failed (disk full, I/O error): while it did,
    /// asynchronous commits wait like the others.
    last_commit_failed: AtomicBool,
    /// Jobs run and transactions committed since start (`/metrics`).
    jobs: AtomicU64,
    commits: AtomicU64,
}

impl Writer {
    pub fn new(conn: Connection) -> Writer {
        Writer {
            state: Mutex::new(State { conn, open: None }),
            waiting: AtomicUsize::new(0),
            last_commit_failed: AtomicBool::new(false),
            jobs: AtomicU64::new(0),
            commits: AtomicU64::new(0),
        }
    }

    /// (jobs run, transactions committed) since start.
    pub fn counts(&self) -> (u64, u64) {
        (self.jobs.load(Ordering::Relaxed), self.commits.load(Ordering::Relaxed))
    }

    fn commit(&self, state: &mut State) {
        if state.open.is_some() {
            self.commits.fetch_add(1, Ordering::Relaxed);
            let ok = state.commit();
            self.last_commit_failed.store(!ok, Ordering::SeqCst);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // A poisoned lock only means a panic outside a job; the state it
        // protects is still consistent (jobs are unwound in `write`).
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        state
    }

    /// Runs `f` as one job: all of its changes are committed, or none.
    pub fn write<T>(&self, f: impl FnOnce(&Connection) -> AppResult<T>) -> AppResult<T> {
        let (value, batch) = self.run(Undo::Job, f)?;
        batch.wait().map_err(rusqlite::Error::from)?;
        Ok(value)
    }

    /// Runs `f` as one job and returns as soon as it has run, without
    /// waiting for its batch to commit (PostgreSQL calls this an
    /// asynchronous commit). Every later job sees its changes at once, since
    /// all jobs run on this connection; another process's writer waits for
    /// the write lock this transaction holds until it commits, which follows
    /// within the batch (at once when no writer is waiting).
    ///
    /// What it gives up: if that commit fails, the changes are lost after
    /// the caller was answered. So it is only for bookkeeping whose loss is
    /// harmless (a DIGEST nonce and its count), and only while commits
    /// succeed: after a failed commit every job waits for its own again, so
    /// a full disk fails requests instead of quietly dropping their writes.
    ///
    /// The job also runs without a savepoint of its own (two statements
    /// less): a failing statement is undone by SQLite, but what the job
    /// changed before failing stays. Its changes must be right to keep
    /// whatever follows (a stored nonce, a count that only grows).
    pub fn write_async_commit<T>(&self, f: impl FnOnce(&Connection) -> AppResult<T>) -> AppResult<T> {
        let (value, batch) = self.run(Undo::Statement, f)?;
        let outcome = match batch.outcome() {
            Some(known) => known,
            None if self.last_commit_failed.load(Ordering::SeqCst) => batch.wait(),
            None => Ok(()),
        };
        outcome.map_err(rusqlite::Error::from)?;
        Ok(value)
    }

    /// Runs `f` in the open batch (opening one if needed), commits the
    /// batch when no other writer waits or it is full; returns `f`'s value
    /// and the batch whose commit makes it durable.
    fn run<T>(&self, undo: Undo, f: impl FnOnce(&Connection) -> AppResult<T>) -> AppResult<(T, Arc<Batch>)> {
        let mut state = self.lock();
        let alone = state.open.is_none();
        let batch = match &state.open {
            Some((batch, _)) => batch.clone(),
            None => {
                if !state.conn.is_autocommit() {
                    let _ = state.conn.execute_batch("ROLLBACK");
                }
                state.conn.cached_execute("BEGIN IMMEDIATE", [])?;
                let batch = Arc::new(Batch::default());
                state.open = Some((batch.clone(), 0));
                batch
            }
        };
        let value = match undo {
            Undo::Statement => catch_unwind(AssertUnwindSafe(|| f(&state.conn))),
            // First in its transaction: undoing the job is rolling the
            // transaction back, no savepoint needed (the usual case when
            // writes do not pile up; a savepoint costs two statements and
            // SQLite's bookkeeping of every page it changes).
            Undo::Job if alone => {
                let value = catch_unwind(AssertUnwindSafe(|| f(&state.conn)));
                if !matches!(value, Ok(Ok(_))) {
                    let _ = state.conn.cached_execute("ROLLBACK", []);
                    if let Some((batch, _)) = state.open.take() {
                        batch.finish(Ok(()));
                    }
                }
                value
            }
            Undo::Job => match state.conn.cached_execute("SAVEPOINT job", []) {
                Err(e) => Ok(Err(e.into())),
                Ok(_) => {
                    let value = catch_unwind(AssertUnwindSafe(|| f(&state.conn)));
                    if !matches!(value, Ok(Ok(_))) {
                        let _ = state.conn.cached_execute("ROLLBACK TO job", []);
                    }
                    let _ = state.conn.cached_execute("RELEASE job", []);
                    value
                }
            },
        };
        if state.open.is_some() && state.conn.is_autocommit() {
            // SQLite rolled the whole transaction back on an error (disk full,
            // I/O error): the batch's earlier jobs are undone too. They, and
            // any job still to join, must hear it now, not at a COMMIT that
            // would find no transaction (or commit later jobs run outside it).
            if let Some((rolled_back, _)) = state.open.take() {
                self.last_commit_failed.store(true, Ordering::SeqCst);
                rolled_back.finish(Err(CommitFailure {
                    code: ffi::Error::new(ffi::SQLITE_ABORT),
                    message: Some("the transaction was rolled back after an error".into()),
                }));
            }
        }
        self.jobs.fetch_add(1, Ordering::Relaxed);
        let full = match state.open.as_mut() {
            Some((_, jobs)) => {
                *jobs += 1;
                *jobs >= MAX_BATCH
            }
            None => true,
        };
        if full || self.waiting.load(Ordering::SeqCst) == 0 {
            self.commit(&mut state);
        }
        drop(state);
        match value {
            Ok(value) => Ok((value?, batch)),
            Err(panic) => resume_unwind(panic),
        }
    }

    /// Runs `f` on the writer connection with no transaction open and no
    /// write in progress (checkpoints).
    pub fn idle<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        let mut state = self.lock();
        self.commit(&mut state);
        f(&state.conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AppError;
    use std::sync::Barrier;

    fn writer(dir: &std::path::Path) -> (Writer, std::path::PathBuf) {
        let path = dir.join("w.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE);
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (id INTEGER PRIMARY KEY,
               parent_id INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
             PRAGMA foreign_keys = ON;",
        )
        .unwrap();
        (Writer::new(conn), path)
    }

    fn values(path: &std::path::Path) -> Vec<String> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// A job of the lists the tests queue.
    type Job = Box<dyn FnOnce(&Connection) -> AppResult<()> + Send>;

    fn insert(conn: &Connection, v: &str) -> AppResult<()> {
        conn.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
        Ok(())
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("flexiapi-writer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Runs `jobs` concurrently while a first job (inserting "holder") holds
    /// the writer, so the others queue up and share transactions; returns
    /// the holder's result, then theirs.
    fn queued<F>(writer: &Writer, jobs: Vec<F>) -> Vec<AppResult<()>>
    where
        F: FnOnce(&Connection) -> AppResult<()> + Send,
    {
        let started = Barrier::new(2);
        let release = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let holder = s.spawn(|| {
                writer.write(|c| {
                    started.wait();
                    while !release.load(Ordering::SeqCst) {
                        std::thread::yield_now();
                    }
                    insert(c, "holder")
                })
            });
            started.wait();
            let handles: Vec<_> = jobs.into_iter().map(|job| s.spawn(move || writer.write(job))).collect();
            while writer.waiting.load(Ordering::SeqCst) < handles.len() {
                std::thread::yield_now();
            }
            release.store(true, Ordering::SeqCst);
            let mut results = vec![holder.join().unwrap()];
            results.extend(handles.into_iter().map(|h| h.join().unwrap()));
            results
        })
    }

    #[test]
    fn queued_writers_share_commits_and_all_land() {
        let dir = temp_dir("share");
        let (writer, path) = writer(&dir);
        let names: Vec<String> = (0..8).map(|i| format!("job{i}")).collect();
        let jobs: Vec<_> = names.iter().map(|n| move |c: &Connection| insert(c, n)).collect();
        let results = queued(&writer, jobs);
        assert!(results.iter().all(Result::is_ok));
        let (jobs, commits) = writer.counts();
        assert_eq!(jobs, 9);
        assert!(commits < jobs, "{commits} commits for {jobs} queued jobs: nothing was shared");
        let mut expected: Vec<String> = names.clone();
        expected.push("holder".into());
        expected.sort();
        assert_eq!(values(&path), expected);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_failing_job_undoes_only_itself() {
        let dir = temp_dir("fail");
        let (writer, path) = writer(&dir);
        let ok = |name: &'static str| move |c: &Connection| insert(c, name);
        let jobs: Vec<Job> = vec![
            Box::new(ok("a")),
            // Writes, then fails: its row must not survive.
            Box::new(|c: &Connection| {
                insert(c, "doomed")?;
                Err(AppError::not_found())
            }),
            // A constraint error from SQLite itself.
            Box::new(|c: &Connection| insert(c, "a")),
            Box::new(ok("b")),
        ];
        let results = queued(&writer, jobs);
        // "a" is inserted by exactly one of the two jobs that try it.
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 2);
        assert!(results[0].is_ok() && results[4].is_ok() && results[2].is_err());
        assert!(results[1].is_ok() != results[3].is_ok());
        assert_eq!(values(&path), ["a", "b", "holder"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_panicking_job_undoes_itself_and_the_writer_goes_on() {
        let dir = temp_dir("panic");
        let (writer, path) = writer(&dir);
        let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
            writer.write(|c| -> AppResult<()> {
                insert(c, "half")?;
                panic!("job bug");
            })
        }));
        assert!(panicked.is_err());
        writer.write(|c| insert(c, "after")).unwrap();
        assert_eq!(values(&path), ["after"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_failed_commit_fails_every_job_of_its_batch() {
        let dir = temp_dir("commit");
        let (writer, path) = writer(&dir);
        // A deferred foreign key is only checked at COMMIT: the job itself
        // succeeds, the commit of its batch does not.
        let jobs: Vec<Job> = vec![
            Box::new(|c: &Connection| insert(c, "innocent")),
            Box::new(|c: &Connection| {
                c.execute("INSERT INTO child (parent_id) VALUES (42)", [])?;
                Ok(())
            }),
        ];
        let results = queued(&writer, jobs);
        let (jobs, commits) = writer.counts();
        if commits == 1 {
            // Holder and both jobs in one batch: all refused, nothing kept.
            assert_eq!(jobs, 3);
            assert!(results.iter().all(Result::is_err));
            assert!(values(&path).is_empty());
        } else {
            // The job with the bad key fails wherever it ran.
            assert!(results[2].is_err());
            assert!(!values(&path).is_empty());
        }
        // The writer still works afterwards.
        writer.write(|c| insert(c, "later")).unwrap();
        assert!(values(&path).contains(&"later".to_string()));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_async_commit_is_seen_at_once_by_the_next_job_and_lands() {
        let dir = temp_dir("async");
        let (writer, path) = writer(&dir);
        writer.write_async_commit(|c| insert(c, "early")).unwrap();
        let seen: i64 =
            writer.write(|c| Ok(c.query_row("SELECT count(*) FROM t WHERE v = 'early'", [], |r| r.get(0))?)).unwrap();
        assert_eq!(seen, 1);
        assert_eq!(values(&path), ["early"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_async_commit_that_fails_to_commit_says_so_and_later_ones_wait() {
        let dir = temp_dir("async-fail");
        let (writer, path) = writer(&dir);
        // Alone, the job commits its own batch: the failure is known and
        // returned, nothing is kept.
        let failed = writer.write_async_commit(|c| {
            c.execute("INSERT INTO child (parent_id) VALUES (42)", [])?;
            Ok(())
        });
        assert!(failed.is_err());
        assert!(writer.last_commit_failed.load(Ordering::SeqCst));
        // The next successful commit lifts the fallback.
        writer.write_async_commit(|c| insert(c, "after")).unwrap();
        assert!(!writer.last_commit_failed.load(Ordering::SeqCst));
        assert_eq!(values(&path), ["after"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_async_job_has_no_savepoint_a_failing_statement_undoes_itself() {
        let dir = temp_dir("async-undo");
        let (writer, path) = writer(&dir);
        writer.write(|c| insert(c, "taken")).unwrap();
        // Its first change stays, its failing statement (a duplicate) is
        // undone by SQLite alone, and the writer goes on.
        let failed = writer.write_async_commit(|c| {
            insert(c, "kept")?;
            insert(c, "taken")
        });
        assert!(failed.is_err());
        writer.write(|c| insert(c, "after")).unwrap();
        assert_eq!(values(&path), ["after", "kept", "taken"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_transaction_rolled_back_under_a_batch_fails_every_job_of_it() {
        let dir = temp_dir("rolled-back");
        let (writer, path) = writer(&dir);
        // A job ending the transaction stands for SQLite rolling it back by
        // itself after an I/O error or a full disk.
        let jobs: Vec<Job> = vec![
            Box::new(|c: &Connection| insert(c, "before")),
            Box::new(|c: &Connection| {
                c.execute_batch("ROLLBACK")?;
                Ok(())
            }),
            Box::new(|c: &Connection| insert(c, "after")),
        ];
        let results = queued(&writer, jobs);
        let names = ["holder", "before", "", "after"];
        let stored = values(&path);
        // The holder shared the rolled-back transaction.
        assert!(results[0].is_err() && results[2].is_err(), "{results:?}");
        // Acknowledged exactly when stored.
        for (name, result) in names.iter().zip(&results).filter(|(n, _)| !n.is_empty()) {
            assert_eq!(result.is_ok(), stored.contains(&name.to_string()), "{name}: {result:?} with {stored:?}");
        }
        writer.write(|c| insert(c, "later")).unwrap();
        assert!(values(&path).contains(&"later".to_string()));
        let _ = std::fs::remove_dir_all(dir);
    }
}
