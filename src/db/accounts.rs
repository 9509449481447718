//! `accounts`, `passwords`, `accounts_tombstones`, `activation_expirations`:
//! the tables Flexisip reads, and what hangs directly on an account.

use super::optional;
use super::Cached;
use super::{query_in, query_in_by_account};
use crate::domain::time;
use rusqlite::{params, Connection, Row};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub domain: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub activated: bool,
    pub admin: bool,
    pub confirmation_key: Option<String>,
    pub provisioning_token: Option<String>,
    pub ip_address: String,
    pub user_agent: String,
    pub display_name: Option<String>,
    pub dtmf_protocol: Option<String>,
    pub group: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Account {
    pub fn sip(&self) -> String {
        format!("{}@{}", self.username, self.domain)
    }
}

pub(super) const COLUMNS: &str = "id, username, domain, email, phone, activated, admin, confirmation_key, \
    provisioning_token, ip_address, user_agent, display_name, dtmf_protocol, \"group\", created_at, updated_at";

/// `COLUMNS`, each prefixed with `table.` (for joins).
pub(super) fn qualified_columns(table: &str) -> String {
    COLUMNS.split(',').map(|c| format!("{table}.{}", c.trim())).collect::<Vec<_>>().join(", ")
}

pub(super) fn from_row(r: &Row) -> rusqlite::Result<Account> {
    Ok(Account {
        id: r.get(0)?,
        username: r.get(1)?,
        domain: r.get(2)?,
        email: r.get(3)?,
        phone: r.get(4)?,
        activated: r.get(5)?,
        admin: r.get(6)?,
        confirmation_key: r.get(7)?,
        provisioning_token: r.get(8)?,
        ip_address: r.get(9)?,
        user_agent: r.get(10)?,
        display_name: r.get(11)?,
        dtmf_protocol: r.get(12)?,
        group: r.get(13)?,
        created_at: r.get(14)?,
        updated_at: r.get(15)?,
    })
}

/// The first account `sql` (a `SELECT {COLUMNS} FROM accounts ...`) finds.
fn one(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<Option<Account>> {
    let mut stmt = conn.prepare_cached(sql)?;
    optional(stmt.query_row(params, from_row))
}

/// `SELECT {COLUMNS} FROM accounts WHERE <condition> LIMIT 1`, built once.
macro_rules! first_account {
    ($condition:literal) => {
        super::static_sql!("SELECT {COLUMNS} FROM accounts WHERE {} LIMIT 1", $condition)
    };
}

pub fn by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<Account>> {
    one(conn, first_account!("id = ?1"), [id])
}

pub fn by_sip(conn: &Connection, username: &str, domain: &str) -> rusqlite::Result<Option<Account>> {
    one(conn, first_account!("username = ?1 AND domain = ?2"), [username, domain])
}

pub fn by_provisioning_token(conn: &Connection, token: &str) -> rusqlite::Result<Option<Account>> {
    one(conn, first_account!("provisioning_token = ?1"), [token])
}

/// The first account (by id) with that email, optionally within one domain.
pub fn by_email(conn: &Connection, email: &str, domain: Option<&str>) -> rusqlite::Result<Option<Account>> {
    match domain {
        Some(d) => one(conn, first_account!("email = ?1 AND domain = ?2 ORDER BY id"), [email, d]),
        None => one(conn, first_account!("email = ?1 ORDER BY id"), [email]),
    }
}

pub fn by_phone(conn: &Connection, phone: &str) -> rusqlite::Result<Option<Account>> {
    one(conn, first_account!("phone = ?1"), [phone])
}

/// An account whose username or phone is `phone`, in any domain.
pub fn phone_taken(conn: &Connection, phone: &str, except_id: Option<i64>) -> rusqlite::Result<bool> {
    conn.cached_row(
        "SELECT EXISTS(SELECT 1 FROM accounts WHERE (phone = ?1 OR username = ?1) AND id <> ?2)",
        params![phone, except_id.unwrap_or(-1)],
        |r| r.get(0),
    )
}

pub fn username_taken(
    conn: &Connection,
    username: &str,
    domain: &str,
    except_id: Option<i64>,
) -> rusqlite::Result<bool> {
    conn.cached_row(
        "SELECT EXISTS(SELECT 1 FROM accounts WHERE username = ?1 AND domain = ?2 AND id <> ?3)",
        params![username, domain, except_id.unwrap_or(-1)],
        |r| r.get(0),
    )
}

pub fn email_taken(conn: &Connection, email: &str, except_id: Option<i64>) -> rusqlite::Result<bool> {
    conn.cached_row(
        "SELECT EXISTS(SELECT 1 FROM accounts WHERE email = ?1 AND id <> ?2)",
        params![email, except_id.unwrap_or(-1)],
        |r| r.get(0),
    )
}

pub fn tombstoned(conn: &Connection, username: &str, domain: &str) -> rusqlite::Result<bool> {
    conn.cached_row(
        "SELECT EXISTS(SELECT 1 FROM accounts_tombstones WHERE username = ?1 AND domain = ?2)",
        [username, domain],
        |r| r.get(0),
    )
}

/// The fields an insert needs; timestamps are set here.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub username: String,
    pub domain: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub activated: bool,
    pub admin: bool,
    pub confirmation_key: Option<String>,
    pub provisioning_token: Option<String>,
    pub ip_address: String,
    pub user_agent: String,
    pub display_name: Option<String>,
    pub dtmf_protocol: Option<String>,
    /// Overrides the creation time (seeding, admin accounts).
    pub created_at: Option<String>,
}

pub fn insert(conn: &Connection, a: &NewAccount) -> rusqlite::Result<i64> {
    let now = time::now_sql();
    let created = a.created_at.clone().unwrap_or_else(|| now.clone());
    conn.cached_execute(
        "INSERT INTO accounts (username, domain, email, phone, activated, admin, confirmation_key, provisioning_token, \
         ip_address, user_agent, display_name, dtmf_protocol, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            a.username,
            a.domain,
            a.email,
            a.phone,
            a.activated,
            a.admin,
            a.confirmation_key,
            a.provisioning_token,
            a.ip_address,
            a.user_agent,
            a.display_name,
            a.dtmf_protocol,
            created,
            now
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Inserts with a chosen id (seeding Linphone's test accounts).
pub fn insert_with_id(conn: &Connection, id: i64, a: &NewAccount) -> rusqlite::Result<()> {
    let new_id = insert(conn, a)?;
    conn.cached_execute("UPDATE accounts SET id = ?1 WHERE id = ?2", [id, new_id])?;
    Ok(())
}

/// The editable profile, written as a whole (admin PUT, admin form).
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub username: String,
    pub domain: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub admin: bool,
    pub display_name: Option<String>,
    pub dtmf_protocol: Option<String>,
}

pub fn update_profile(conn: &Connection, id: i64, p: &Profile) -> rusqlite::Result<()> {
    conn.cached_execute(
        "UPDATE accounts SET username = ?1, domain = ?2, email = ?3, phone = ?4, admin = ?5, display_name = ?6, \
         dtmf_protocol = ?7, updated_at = ?8 WHERE id = ?9",
        params![p.username, p.domain, p.email, p.phone, p.admin, p.display_name, p.dtmf_protocol, time::now_sql(), id],
    )?;
    Ok(())
}

pub fn set_activated(conn: &Connection, id: i64, activated: bool) -> rusqlite::Result<()> {
    conn.cached_execute(
        "UPDATE accounts SET activated = ?1, updated_at = ?2 WHERE id = ?3",
        params![activated, time::now_sql(), id],
    )?;
    Ok(())
}

pub fn set_admin(conn: &Connection, id: i64, admin: bool) -> rusqlite::Result<()> {
    conn.cached_execute(
        "UPDATE accounts SET admin = ?1, updated_at = ?2 WHERE id = ?3",
        params![admin, time::now_sql(), id],
    )?;
    Ok(())
}

pub fn set_email(conn: &Connection, id: i64, email: Option<&str>) -> rusqlite::Result<()> {
    conn.cached_execute(
        "UPDATE accounts SET email = ?1, updated_at = ?2 WHERE id = ?3",
        params![email, time::now_sql(), id],
    )?;
    Ok(())
}

pub fn set_phone(conn: &Connection, id: i64, phone: Option<&str>) -> rusqlite::Result<()> {
    conn.cached_execute(
        "UPDATE accounts SET phone = ?1, updated_at = ?2 WHERE id = ?3",
        params![phone, time::now_sql(), id],
    )?;
    Ok(())
}

pub fn set_display_name(conn: &Connection, id: i64, name: Option<&str>) -> rusqlite::Result<()> {
    conn.cached_execute(
        "UPDATE accounts SET display_name = ?1, updated_at = ?2 WHERE id = ?3",
        params![name, time::now_sql(), id],
    )?;
    Ok(())
}

pub fn set_confirmation_key(conn: &Connection, id: i64, key: Option<&str>) -> rusqlite::Result<()> {
    conn.cached_execute(
        "UPDATE accounts SET confirmation_key = ?1, updated_at = ?2 WHERE id = ?3",
        params![key, time::now_sql(), id],
    )?;
    Ok(())
}

pub fn set_provisioning_token(conn: &Connection, id: i64, token: Option<&str>) -> rusqlite::Result<()> {
    conn.cached_execute(
        "UPDATE accounts SET provisioning_token = ?1, updated_at = ?2 WHERE id = ?3",
        params![token, time::now_sql(), id],
    )?;
    Ok(())
}

/// Consumes a provisioning token exactly once: only the request whose
/// update matched the token gets the account.
pub fn consume_provisioning_token(conn: &Connection, token: &str) -> rusqlite::Result<Option<i64>> {
    let id: Option<i64> =
        optional(conn.cached_row("SELECT id FROM accounts WHERE provisioning_token = ?1", [token], |r| r.get(0)))?;
    let Some(id) = id else { return Ok(None) };
    let changed = conn.cached_execute(
        "UPDATE accounts SET provisioning_token = NULL, activated = 1, updated_at = ?1 WHERE id = ?2 AND provisioning_token = ?3",
        params![time::now_sql(), id, token],
    )?;
    Ok(if changed == 1 { Some(id) } else { None })
}

/// Deletes the account (dependants cascade) and leaves a tombstone.
pub fn delete_with_tombstone(conn: &Connection, account: &Account) -> rusqlite::Result<usize> {
    let now = time::now_sql();
    conn.cached_execute(
        "INSERT INTO accounts_tombstones (username, domain, created_at, updated_at) VALUES (?1, ?2, ?3, ?3) \
         ON CONFLICT (username, domain) DO NOTHING",
        params![account.username, account.domain, now],
    )?;
    conn.cached_execute("DELETE FROM accounts WHERE id = ?1", [account.id])
}

/// Admin listing: one page, ordered by id, optionally within one domain.
pub fn page(conn: &Connection, domain: Option<&str>, limit: i64, offset: i64) -> rusqlite::Result<Vec<Account>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM accounts WHERE (?1 IS NULL OR domain = ?1) ORDER BY id LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt.query_map(params![domain, limit, offset], from_row)?;
    rows.collect()
}

pub fn count(conn: &Connection, domain: Option<&str>) -> rusqlite::Result<i64> {
    // Maintained by triggers (schema.sql): one row instead of a scan.
    conn.prepare_cached("SELECT coalesce(sum(n), 0) FROM account_counts WHERE (?1 IS NULL OR domain = ?1)")?
        .query_row(params![domain], |r| r.get(0))
}

/// Portal search and filters. `needle` matches username, email, phone or
/// display name as a literal substring (`%` and `_` are escaped).
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub needle: Option<String>,
    pub domain: Option<String>,
    pub activated: Option<bool>,
    pub admin: Option<bool>,
    /// Column to sort on: one of `SORTABLE`.
    pub order_by: String,
    pub descending: bool,
}

pub const SORTABLE: [&str; 5] = ["id", "username", "domain", "email", "created_at"];

fn like_pattern(needle: &str) -> String {
    let escaped = needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

pub fn search(conn: &Connection, s: &Search, limit: i64, offset: i64) -> rusqlite::Result<(Vec<Account>, i64)> {
    let column = if SORTABLE.contains(&s.order_by.as_str()) { s.order_by.as_str() } else { "id" };
    let direction = if s.descending { "DESC" } else { "ASC" };
    let filter = "(?1 IS NULL OR username LIKE ?1 ESCAPE '\\' OR email LIKE ?1 ESCAPE '\\' OR phone LIKE ?1 ESCAPE '\\' \
                  OR display_name LIKE ?1 ESCAPE '\\') AND (?2 IS NULL OR domain = ?2) AND (?3 IS NULL OR activated = ?3) \
                  AND (?4 IS NULL OR admin = ?4)";
    let pattern = s.needle.as_deref().filter(|n| !n.is_empty()).map(like_pattern);
    let total = conn.cached_row(
        &format!("SELECT count(*) FROM accounts WHERE {filter}"),
        params![pattern, s.domain, s.activated, s.admin],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM accounts WHERE {filter} ORDER BY {column} {direction}, id {direction} LIMIT ?5 OFFSET ?6"
    ))?;
    let rows = stmt.query_map(params![pattern, s.domain, s.activated, s.admin, limit, offset], from_row)?;
    Ok((rows.collect::<rusqlite::Result<Vec<_>>>()?, total))
}

// --- passwords ---

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Password {
    pub id: i64,
    pub account_id: i64,
    pub password: String,
    pub algorithm: String,
}

/// The account `username@domain` and its passwords (by id), in one query:
/// the lookup of every DIGEST request.
pub fn by_sip_with_passwords(
    conn: &Connection,
    username: &str,
    domain: &str,
) -> rusqlite::Result<Option<(Account, Vec<Password>)>> {
    let sql = super::static_sql!(
        "SELECT {}, passwords.id, passwords.password, passwords.algorithm FROM accounts \
         LEFT JOIN passwords ON passwords.account_id = accounts.id \
         WHERE accounts.username = ?1 AND accounts.domain = ?2",
        qualified_columns("accounts")
    );
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query([username, domain])?;
    let mut found: Option<(Account, Vec<Password>)> = None;
    while let Some(row) = rows.next()? {
        let account_id: i64 = row.get(0)?;
        match &mut found {
            None => found = Some((from_row(row)?, Vec::new())),
            // Usernames are unique per domain; should two rows ever match,
            // the first account is the one (as `by_sip`).
            Some((account, _)) if account.id != account_id => break,
            Some(_) => {}
        }
        if let (Some(id), Some((account, passwords))) = (row.get::<_, Option<i64>>(16)?, &mut found) {
            passwords.push(Password { id, account_id: account.id, password: row.get(17)?, algorithm: row.get(18)? });
        }
    }
    if let Some((_, passwords)) = &mut found {
        // By id, as `passwords` lists them (sorting in SQL took a temporary B-tree).
        passwords.sort_unstable_by_key(|p| p.id);
    }
    Ok(found)
}

pub fn passwords(conn: &Connection, account_id: i64) -> rusqlite::Result<Vec<Password>> {
    Ok(passwords_of_many(conn, &[account_id])?.remove(&account_id).unwrap_or_default())
}

/// The passwords of several accounts (each list ordered by id), by account id.
pub fn passwords_of_many(conn: &Connection, account_ids: &[i64]) -> rusqlite::Result<HashMap<i64, Vec<Password>>> {
    let mut by_account = query_in_by_account(
        conn,
        "SELECT id, account_id, password, algorithm FROM passwords WHERE account_id IN ({in})",
        account_ids,
        |r| {
            let p = Password { id: r.get(0)?, account_id: r.get(1)?, password: r.get(2)?, algorithm: r.get(3)? };
            Ok((p.account_id, p))
        },
    )?;
    // Sorted here: the index leads by account and algorithm, so `ORDER BY
    // id` in SQL took a temporary B-tree on every query.
    by_account.values_mut().for_each(|passwords| passwords.sort_unstable_by_key(|p| p.id));
    Ok(by_account)
}

/// Replaces every stored password by one row (the API leaves exactly one).
pub fn replace_password(conn: &Connection, account_id: i64, hash: &str, algorithm: &str) -> rusqlite::Result<()> {
    conn.cached_execute("DELETE FROM passwords WHERE account_id = ?1", [account_id])?;
    conn.cached_execute(
        "INSERT INTO passwords (account_id, password, algorithm) VALUES (?1, ?2, ?3)",
        params![account_id, hash, algorithm],
    )?;
    Ok(())
}

/// Adds a row as given (seeding: several algorithms, clear text).
pub fn add_password(conn: &Connection, account_id: i64, hash: &str, algorithm: &str) -> rusqlite::Result<()> {
    conn.cached_execute(
        "INSERT INTO passwords (account_id, password, algorithm) VALUES (?1, ?2, ?3) \
         ON CONFLICT (account_id, algorithm) DO UPDATE SET password = excluded.password",
        params![account_id, hash, algorithm],
    )?;
    Ok(())
}

// --- activation expirations ---

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationExpiration {
    pub id: i64,
    pub account_id: i64,
    pub expires: String,
    pub created_at: String,
    pub updated_at: String,
}

pub fn activation_expiration(conn: &Connection, account_id: i64) -> rusqlite::Result<Option<ActivationExpiration>> {
    Ok(activation_expirations_of_many(conn, &[account_id])?.remove(&account_id))
}

/// The activation expirations (at most one per account) of several accounts.
pub fn activation_expirations_of_many(
    conn: &Connection,
    account_ids: &[i64],
) -> rusqlite::Result<HashMap<i64, ActivationExpiration>> {
    let rows = query_in(
        conn,
        "SELECT id, account_id, expires, created_at, updated_at FROM activation_expirations WHERE account_id IN ({in})",
        account_ids,
        |r| {
            Ok(ActivationExpiration {
                id: r.get(0)?,
                account_id: r.get(1)?,
                expires: r.get(2)?,
                created_at: r.get(3)?,
                updated_at: r.get(4)?,
            })
        },
    )?;
    Ok(rows.into_iter().map(|e| (e.account_id, e)).collect())
}

pub fn set_activation_expiration(conn: &Connection, account_id: i64, expires: Option<&str>) -> rusqlite::Result<()> {
    conn.cached_execute("DELETE FROM activation_expirations WHERE account_id = ?1", [account_id])?;
    if let Some(expires) = expires {
        let now = time::now_sql();
        conn.cached_execute(
            "INSERT INTO activation_expirations (account_id, expires, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
            params![account_id, expires, now],
        )?;
    }
    Ok(())
}

/// Has the account's activation window closed?
pub fn activation_expired(conn: &Connection, account_id: i64) -> rusqlite::Result<bool> {
    conn.cached_row(
        "SELECT EXISTS(SELECT 1 FROM activation_expirations WHERE account_id = ?1 AND expires < ?2)",
        params![account_id, time::now_sql()],
        |r| r.get(0),
    )
}

// --- statistics ---

/// Accounts created since `since`, bucketed by the first `prefix_len`
/// characters of `created_at` (13 = hour, 10 = day), with phone/activation
/// counts. Rows: (bucket, all, phone, activated, activated_phone).
pub fn creation_buckets(
    conn: &Connection,
    since: &str,
    prefix_len: i64,
    domain: Option<&str>,
) -> rusqlite::Result<Vec<(String, i64, i64, i64, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT substr(created_at, 1, ?1) AS bucket, count(*), \
         sum(CASE WHEN phone IS NOT NULL THEN 1 ELSE 0 END), \
         sum(CASE WHEN activated = 1 THEN 1 ELSE 0 END), \
         sum(CASE WHEN activated = 1 AND phone IS NOT NULL THEN 1 ELSE 0 END) \
         FROM accounts WHERE created_at >= ?2 AND (?3 IS NULL OR domain = ?3) GROUP BY bucket ORDER BY bucket",
    )?;
    let rows = stmt.query_map(params![prefix_len, since, domain], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    rows.collect()
}

// --- one-use confirmation keys (activation, recovery) ---

/// Spends the confirmation key, only if it is still `key`: of two
/// concurrent uses, one wins (true for the winner). The account is
/// activated if it has a password (one signed up on the portal is activated
/// when it sets its first password, web.md 4.2).
pub fn consume_confirmation_key(conn: &Connection, id: i64, key: &str) -> rusqlite::Result<bool> {
    Ok(conn.cached_execute(
        "UPDATE accounts SET \
           activated = CASE WHEN EXISTS (SELECT 1 FROM passwords WHERE account_id = ?2) THEN 1 ELSE activated END, \
           confirmation_key = NULL, updated_at = ?1 \
         WHERE id = ?2 AND confirmation_key = ?3",
        params![time::now_sql(), id, key],
    )? == 1)
}

/// The account (of `domain`) whose confirmation key is `key`.
pub fn by_confirmation_key(conn: &Connection, key: &str, domain: Option<&str>) -> rusqlite::Result<Option<Account>> {
    match domain {
        Some(d) => one(conn, first_account!("confirmation_key = ?1 AND domain = ?2"), [key, d]),
        None => one(conn, first_account!("confirmation_key = ?1"), [key]),
    }
}

/// Several accounts by id (contacts), in the order of `ids`; ids without
/// an account are skipped.
pub fn by_ids(conn: &Connection, ids: &[i64]) -> rusqlite::Result<Vec<Account>> {
    let mut found: HashMap<i64, Account> =
        query_in(conn, super::static_sql!("SELECT {COLUMNS} FROM accounts WHERE id IN ({{in}})"), ids, from_row)?
            .into_iter()
            .map(|a| (a.id, a))
            .collect();
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}

/// The contacts of an account, ordered by id, in one query.
pub fn contacts_of(conn: &Connection, account_id: i64) -> rusqlite::Result<Vec<Account>> {
    let mut stmt = conn.prepare_cached(super::static_sql!(
        "SELECT {} FROM accounts a JOIN contacts c ON c.contact_id = a.id WHERE c.account_id = ?1 ORDER BY a.id",
        qualified_columns("a")
    ))?;
    let rows = stmt.query_map([account_id], from_row)?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(conn: &Connection, username: &str, passwords: &[(&str, &str)]) -> i64 {
        conn.execute(
            "INSERT INTO accounts (username, domain, activated, ip_address, user_agent, created_at, updated_at) \
             VALUES (?1, 'sip.example.org', 1, '127.0.0.1', 'test', '2024-01-01 00:00:00', '2024-01-01 00:00:00')",
            [username],
        )
        .unwrap();
        let id = conn.last_insert_rowid();
        for (hash, algorithm) in passwords {
            conn.execute(
                "INSERT INTO passwords (account_id, password, algorithm) VALUES (?1, ?2, ?3)",
                params![id, hash, algorithm],
            )
            .unwrap();
        }
        id
    }

    #[test]
    fn an_account_and_its_passwords_in_one_query() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut conn).unwrap();
        // Inserted SHA-256 first: the index order (by algorithm) is not the id order.
        let two = account(&conn, "twopasswords", &[("sha256hash", "SHA-256"), ("md5hash", "MD5")]);
        let none = account(&conn, "nopassword", &[]);
        account(&conn, "someoneelse", &[("other", "MD5")]);

        let (found, passwords) = by_sip_with_passwords(&conn, "twopasswords", "sip.example.org").unwrap().unwrap();
        assert_eq!(found.id, two);
        assert_eq!(found, by_sip(&conn, "twopasswords", "sip.example.org").unwrap().unwrap());
        assert_eq!(passwords, self::passwords(&conn, two).unwrap());
        assert_eq!(passwords.iter().map(|p| p.algorithm.as_str()).collect::<Vec<_>>(), ["SHA-256", "MD5"]);

        let (found, passwords) = by_sip_with_passwords(&conn, "nopassword", "sip.example.org").unwrap().unwrap();
        assert_eq!((found.id, passwords.len()), (none, 0));
        assert!(by_sip_with_passwords(&conn, "nopassword", "other.example.org").unwrap().is_none());
        assert!(by_sip_with_passwords(&conn, "nobody", "sip.example.org").unwrap().is_none());
    }
}
