//! The SQLite store of a durable engine: state machine definitions, executions, history events,
//! checkpoints (where each block of an execution stands) and task tokens.
//!
//! One writer thread owns the connection and commits whatever has queued up since its last
//! commit in one transaction (group commit). Callers that need durability before going on (a
//! state transition, a task token handed out, a callback accepted) wait for the commit that
//! contains their write; history events ride along with the next commit. The database runs in
//! WAL mode with `synchronous=NORMAL`: a committed transaction is in the WAL file and survives the
//! process being killed; an operating-system crash or power loss may lose the last commits
//! (never corrupting the file).

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, params};
use thiserror::Error;
use tokio::sync::oneshot;
use tracing::{error, info};

/// Commits are capped so that one commit never holds its waiters for long.
const MAX_BATCH: usize = 8192;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open the execution store {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("the execution store {path} cannot be read: {source}")]
    Read {
        path: String,
        source: rusqlite::Error,
    },
    #[error("the execution store {path} holds a malformed {what} ({key}): {reason}")]
    Corrupt {
        path: String,
        what: &'static str,
        key: String,
        reason: String,
    },
    #[error("the execution store writer stopped: {0}")]
    Writer(String),
    #[error(
        "the execution store {path} is in use by another process (one process at a time may run \
         its executions; `wme executions` commands can read it meanwhile)"
    )]
    InUse { path: String },
    #[error("{path} is not an execution store: it has no {table} table")]
    NotAStore { path: String, table: &'static str },
    #[error("cannot lock the execution store {path}: {source}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
}

/// The tables every store has.
const TABLES: [&str; 5] = [
    "definitions",
    "executions",
    "events",
    "checkpoints",
    "tokens",
];

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS definitions (
    id INTEGER PRIMARY KEY,
    machine_arn TEXT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    substitutions TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS executions (
    arn TEXT PRIMARY KEY,
    definition_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    description TEXT NOT NULL
);
-- Append-only and unindexed: events are only read back all at once, on open. One row holds
-- the events one commit wrote for one execution, one JSON document per line.
CREATE TABLE IF NOT EXISTS events (
    execution_arn TEXT NOT NULL,
    first_id INTEGER NOT NULL,
    events TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    execution_arn TEXT NOT NULL,
    block TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    PRIMARY KEY (execution_arn, block)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    execution_arn TEXT NOT NULL,
    heartbeat TEXT,
    result TEXT
) WITHOUT ROWID;
";

/// One write; every field is already serialized JSON or text.
#[derive(Debug)]
pub(crate) enum Op {
    Definition {
        id: i64,
        machine_arn: String,
        name: String,
        definition: String,
        substitutions: String,
    },
    Execution {
        arn: String,
        definition_id: i64,
        status: String,
        description: String,
    },
    Event {
        execution_arn: String,
        id: u64,
        event: String,
    },
    /// Sets a block's checkpoint, first deleting the checkpoints of finished inner blocks.
    Checkpoint {
        execution_arn: String,
        block: String,
        checkpoint: String,
        clear_prefix: Option<String>,
    },
    Token {
        token: String,
        execution_arn: String,
    },
    Heartbeat {
        token: String,
        at: String,
    },
    CallbackResult {
        token: String,
        result: String,
    },
    /// Updates a finished execution and drops its checkpoints.
    Finish {
        arn: String,
        status: String,
        description: String,
    },
    /// Writes nothing: committing it waits for everything queued before it.
    Sync,
}

enum Ack {
    None,
    Async(oneshot::Sender<Result<(), String>>),
    Blocking(std_mpsc::SyncSender<Result<(), String>>),
}

struct Message {
    op: Op,
    ack: Ack,
}

/// What the store held when it was opened.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) definitions: Vec<DefinitionRow>,
    pub(crate) executions: Vec<ExecutionRow>,
    /// Events of every execution, in id order.
    pub(crate) events: HashMap<String, Vec<String>>,
    /// Checkpoints of running executions: execution → block → checkpoint.
    pub(crate) checkpoints: HashMap<String, HashMap<String, String>>,
    pub(crate) tokens: Vec<TokenRow>,
}

#[derive(Debug)]
pub(crate) struct DefinitionRow {
    pub(crate) id: i64,
    pub(crate) machine_arn: String,
    pub(crate) name: String,
    pub(crate) definition: String,
    pub(crate) substitutions: String,
}

#[derive(Debug)]
pub(crate) struct ExecutionRow {
    pub(crate) arn: String,
    pub(crate) definition_id: i64,
    pub(crate) description: String,
}

#[derive(Debug)]
pub(crate) struct TokenRow {
    pub(crate) token: String,
    pub(crate) execution_arn: String,
    pub(crate) heartbeat: Option<String>,
    pub(crate) result: Option<String>,
}

/// Handle on the writer thread.
pub(crate) struct Store {
    path: String,
    /// Held for the store's lifetime: two processes resuming the same executions would run
    /// each of their steps twice.
    _lock: std::fs::File,
    // A std channel: the writer is a plain thread that blocks on it between commits.
    tx: Option<std_mpsc::Sender<Message>>,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (or creates) the database, reads everything back and starts the writer.
    pub(crate) fn open(path: &Path) -> Result<(Store, Loaded), StoreError> {
        let shown = path.display().to_string();
        let open_err = |source| StoreError::Open {
            path: shown.clone(),
            source,
        };
        let lock = lock_exclusive(path, &shown)?;
        let conn = Connection::open(path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        // A larger page cache keeps the hot B-tree pages of many executions in memory.
        conn.pragma_update(None, "cache_size", -65_536)
            .map_err(open_err)?;
        // Fewer, larger WAL checkpoints (each one syncs the database file).
        conn.pragma_update(None, "wal_autocheckpoint", 4096)
            .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        let loaded = load(&conn).map_err(|source| StoreError::Read {
            path: shown.clone(),
            source,
        })?;
        let (tx, rx) = std_mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("wme-asl-store".into())
            .spawn(move || write_loop(conn, rx))
            .map_err(|e| StoreError::Writer(e.to_string()))?;
        info!(path = %shown, "execution store opened");
        let store = Store {
            path: shown,
            _lock: lock,
            tx: Some(tx),
            writer: Some(writer),
        };
        Ok((store, loaded))
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Reads an existing store without writing to it, even while another process runs it.
    pub(crate) fn read_only(path: &Path) -> Result<Loaded, StoreError> {
        let shown = path.display().to_string();
        let open_err = |source| StoreError::Open {
            path: shown.clone(),
            source,
        };
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        for table in TABLES {
            let found: bool = conn
                .query_row(
                    "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [table],
                    |row| row.get(0),
                )
                .map_err(open_err)?;
            if !found {
                return Err(StoreError::NotAStore {
                    path: shown.clone(),
                    table,
                });
            }
        }
        load(&conn).map_err(|source| StoreError::Read {
            path: shown,
            source,
        })
    }

    fn send(&self, op: Op, ack: Ack) -> bool {
        match &self.tx {
            Some(tx) => tx.send(Message { op, ack }).is_ok(),
            None => false,
        }
    }

    /// Queues a write that commits with the next group.
    pub(crate) fn queue(&self, op: Op) {
        if !self.send(op, Ack::None) {
            error!(path = %self.path, "execution store writer stopped; a write was lost");
        }
    }

    /// Queues a write and resolves once it is committed.
    pub(crate) async fn commit(&self, op: Op) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        if !self.send(op, Ack::Async(ack)) {
            return Err(StoreError::Writer("the writer thread is gone".into()));
        }
        match done.await {
            Ok(result) => result.map_err(StoreError::Writer),
            Err(_) => Err(StoreError::Writer("the writer thread is gone".into())),
        }
    }

    /// Queues a write and blocks the calling thread until it is committed; for the few
    /// synchronous API calls that must not return before their write is durable.
    pub(crate) fn commit_blocking(&self, op: Op) -> Result<(), StoreError> {
        let (ack, done) = std_mpsc::sync_channel(1);
        if !self.send(op, Ack::Blocking(ack)) {
            return Err(StoreError::Writer("the writer thread is gone".into()));
        }
        match done.recv() {
            Ok(result) => result.map_err(StoreError::Writer),
            Err(_) => Err(StoreError::Writer("the writer thread is gone".into())),
        }
    }
}

impl Drop for Store {
    /// Lets the writer commit what is queued, then waits for it.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// An exclusive lock on the store's file, or [`StoreError::InUse`] if another process has it.
/// It is an advisory `flock`, apart from SQLite's own locks, so readers are not kept out.
fn lock_exclusive(path: &Path, shown: &str) -> Result<std::fs::File, StoreError> {
    let lock_err = |source| StoreError::Lock {
        path: shown.to_string(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(lock_err)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse {
            path: shown.to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(lock_err(e)),
    }
}

fn write_loop(mut conn: Connection, rx: std_mpsc::Receiver<Message>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
        }
        let result = apply(&mut conn, &batch).map_err(|e| e.to_string());
        if let Err(e) = &result {
            error!(error = %e, writes = batch.len(), "execution store commit failed");
        }
        for message in batch {
            match message.ack {
                Ack::None => {}
                Ack::Async(ack) => {
                    let _ = ack.send(result.clone());
                }
                Ack::Blocking(ack) => {
                    let _ = ack.send(result.clone());
                }
            }
        }
    }
}

fn apply(conn: &mut Connection, batch: &[Message]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    // Events grouped per execution, in order: one row per execution and commit.
    let mut events: HashMap<&str, (u64, String)> = HashMap::new();
    for message in batch {
        match &message.op {
            Op::Event {
                execution_arn,
                id,
                event,
            } => {
                let (_, lines) = events
                    .entry(execution_arn.as_str())
                    .or_insert_with(|| (*id, String::new()));
                if !lines.is_empty() {
                    lines.push('\n');
                }
                lines.push_str(event);
            }
            op => apply_one(&tx, op)?,
        }
    }
    {
        let mut insert = tx.prepare_cached("INSERT INTO events VALUES (?1, ?2, ?3)")?;
        for (arn, (first_id, lines)) in events {
            insert.execute(params![arn, first_id as i64, lines])?;
        }
    }
    tx.commit()
}

fn apply_one(conn: &Connection, op: &Op) -> rusqlite::Result<()> {
    match op {
        Op::Definition {
            id,
            machine_arn,
            name,
            definition,
            substitutions,
        } => conn
            .prepare_cached("INSERT OR REPLACE INTO definitions VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![id, machine_arn, name, definition, substitutions])
            .map(drop),
        Op::Execution {
            arn,
            definition_id,
            status,
            description,
        } => conn
            .prepare_cached("INSERT OR REPLACE INTO executions VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![arn, definition_id, status, description])
            .map(drop),
        Op::Event {
            execution_arn,
            id,
            event,
        } => conn
            .prepare_cached("INSERT INTO events VALUES (?1, ?2, ?3)")?
            .execute(params![execution_arn, *id as i64, event])
            .map(drop),
        Op::Checkpoint {
            execution_arn,
            block,
            checkpoint,
            clear_prefix,
        } => {
            if let Some(prefix) = clear_prefix {
                conn.prepare_cached(
                    "DELETE FROM checkpoints WHERE execution_arn = ?1 \
                     AND substr(block, 1, length(?2)) = ?2",
                )?
                .execute(params![execution_arn, prefix])?;
            }
            conn.prepare_cached("INSERT OR REPLACE INTO checkpoints VALUES (?1, ?2, ?3)")?
                .execute(params![execution_arn, block, checkpoint])
                .map(drop)
        }
        Op::Token {
            token,
            execution_arn,
        } => conn
            .prepare_cached("INSERT OR IGNORE INTO tokens VALUES (?1, ?2, NULL, NULL)")?
            .execute(params![token, execution_arn])
            .map(drop),
        Op::Heartbeat { token, at } => conn
            .prepare_cached("UPDATE tokens SET heartbeat = ?2 WHERE token = ?1")?
            .execute(params![token, at])
            .map(drop),
        Op::CallbackResult { token, result } => conn
            .prepare_cached("UPDATE tokens SET result = ?2 WHERE token = ?1")?
            .execute(params![token, result])
            .map(drop),
        Op::Finish {
            arn,
            status,
            description,
        } => {
            conn.prepare_cached(
                "UPDATE executions SET status = ?2, description = ?3 WHERE arn = ?1",
            )?
            .execute(params![arn, status, description])?;
            conn.prepare_cached("DELETE FROM checkpoints WHERE execution_arn = ?1")?
                .execute(params![arn])
                .map(drop)
        }
        Op::Sync => Ok(()),
    }
}

fn load(conn: &Connection) -> rusqlite::Result<Loaded> {
    let mut loaded = Loaded::default();
    let mut stmt = conn.prepare(
        "SELECT id, machine_arn, name, definition, substitutions FROM definitions ORDER BY id",
    )?;
    loaded.definitions = stmt
        .query_map([], |r| {
            Ok(DefinitionRow {
                id: r.get(0)?,
                machine_arn: r.get(1)?,
                name: r.get(2)?,
                definition: r.get(3)?,
                substitutions: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare("SELECT arn, definition_id, description FROM executions")?;
    loaded.executions = stmt
        .query_map([], |r| {
            Ok(ExecutionRow {
                arn: r.get(0)?,
                definition_id: r.get(1)?,
                description: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare("SELECT execution_arn, events FROM events ORDER BY rowid")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (arn, lines) = row?;
        let events = loaded.events.entry(arn).or_default();
        events.extend(lines.split('\n').map(str::to_string));
    }
    let mut stmt = conn.prepare("SELECT execution_arn, block, checkpoint FROM checkpoints")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (arn, block, checkpoint) = row?;
        loaded
            .checkpoints
            .entry(arn)
            .or_default()
            .insert(block, checkpoint);
    }
    let mut stmt = conn.prepare("SELECT token, execution_arn, heartbeat, result FROM tokens")?;
    loaded.tokens = stmt
        .query_map([], |r| {
            Ok(TokenRow {
                token: r.get(0)?,
                execution_arn: r.get(1)?,
                heartbeat: r.get(2)?,
                result: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("wme-asl-store-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[tokio::test]
    async fn committed_writes_are_read_back_on_open() {
        let path = temp_db("a.db");
        {
            let (store, loaded) = Store::open(&path).unwrap();
            assert!(loaded.executions.is_empty());
            store.queue(Op::Token {
                token: "t1".into(),
                execution_arn: "arn:e".into(),
            });
            store
                .commit(Op::Checkpoint {
                    execution_arn: "arn:e".into(),
                    block: "/a".into(),
                    checkpoint: "{}".into(),
                    clear_prefix: None,
                })
                .await
                .unwrap();
            store
                .commit(Op::Checkpoint {
                    execution_arn: "arn:e".into(),
                    block: "/b".into(),
                    checkpoint: "{\"x\":1}".into(),
                    clear_prefix: Some("/a".into()),
                })
                .await
                .unwrap();
            store
                .commit_blocking(Op::CallbackResult {
                    token: "t1".into(),
                    result: "42".into(),
                })
                .unwrap();
        }
        let (_store, loaded) = Store::open(&path).unwrap();
        let blocks = &loaded.checkpoints["arn:e"];
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks["/b"], "{\"x\":1}");
        assert_eq!(loaded.tokens.len(), 1);
        assert_eq!(loaded.tokens[0].result.as_deref(), Some("42"));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_with_its_path() {
        let path = temp_db("junk.db");
        std::fs::write(
            &path,
            b"this is not sqlite, just some text that is long enough",
        )
        .unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(err.to_string().contains("junk.db"), "{err}");
    }
}
