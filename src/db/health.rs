//! SQL for the operator's side: `/health`, `/metrics`, `flexiapi doctor`, and
//! the requests Flexisip runs against this schema (its SOCI backend).

use rusqlite::Connection;

/// `[module::Authentication] soci-password-request`: `(password, algorithm)`
/// rows of an activated account; `:id` is the From user, `:domain` its host.
pub const FLEXISIP_PASSWORD_REQUEST: &str = "select passwords.password, passwords.algorithm from passwords join accounts on accounts.id = passwords.account_id where accounts.username = :id and accounts.domain = :domain and accounts.activated = 1";

/// `[presence-server] soci-user-with-phone-request`: the username owning `:phone`.
pub const FLEXISIP_USER_WITH_PHONE_REQUEST: &str = "select accounts.username from accounts where accounts.activated = 1 and (accounts.username = :phone or accounts.phone = :phone)";

/// `[presence-server] soci-users-with-phones-request`: Flexisip replaces
/// `:phones` textually with `'p1','p2',...`; the third column matches a row
/// to the number asked for (never NULL: Flexisip reads it without a null
/// indicator).
pub const FLEXISIP_USERS_WITH_PHONES_REQUEST: &str = "select accounts.username, accounts.domain, coalesce(accounts.phone, accounts.username) from accounts where accounts.activated = 1 and (accounts.username in (:phones) or accounts.phone in (:phones))";

/// `SELECT 1`: the database answers.
pub fn ping(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).map(|_| ())
}

pub fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// The journal mode, without changing it.
pub fn journal_mode(conn: &Connection) -> rusqlite::Result<String> {
    conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
}

/// `PRAGMA quick_check`: "ok" or the first problem found.
pub fn quick_check(conn: &Connection) -> rusqlite::Result<String> {
    conn.query_row("PRAGMA quick_check", [], |r| r.get(0))
}

/// Accounts by state: (activated, not activated).
pub fn accounts_by_state(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("SELECT coalesce(sum(activated <> 0), 0), coalesce(sum(activated = 0), 0) FROM accounts", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
}

/// An activated account holding a password: (username, domain, algorithms
/// stored), for trying Flexisip's password request on real data.
pub fn sample_account_with_password(conn: &Connection) -> rusqlite::Result<Option<(String, String, i64)>> {
    super::optional(conn.query_row(
        "SELECT accounts.username, accounts.domain, count(passwords.id) FROM accounts \
         JOIN passwords ON passwords.account_id = accounts.id WHERE accounts.activated = 1 \
         GROUP BY accounts.id ORDER BY accounts.id LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    ))
}

/// An activated account's phone number, if any account has one.
pub fn sample_phone(conn: &Connection) -> rusqlite::Result<Option<String>> {
    super::optional(conn.query_row(
        "SELECT phone FROM accounts WHERE activated = 1 AND phone IS NOT NULL AND phone <> '' ORDER BY id LIMIT 1",
        [],
        |r| r.get(0),
    ))
}

/// Runs a password request the way SOCI does: only the named parameters the
/// text contains are bound (`:id`, `:domain`, `:authid`).
pub fn run_password_request(
    conn: &Connection,
    sql: &str,
    username: &str,
    domain: &str,
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(sql)?;
    for (name, value) in [(":id", username), (":domain", domain), (":authid", username)] {
        if let Some(index) = stmt.parameter_index(name)? {
            stmt.raw_bind_parameter(index, value)?;
        }
    }
    let columns = stmt.column_count();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let password: String = row.get(0)?;
        // A one-column result is taken as MD5 by Flexisip.
        let algorithm: String = if columns > 1 { row.get(1)? } else { "MD5".to_string() };
        out.push((password, algorithm));
    }
    Ok(out)
}

/// Runs the user-with-phone request (`:phone` bound).
pub fn run_user_with_phone_request(conn: &Connection, sql: &str, phone: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(rusqlite::named_params! {":phone": phone}, |r| r.get(0))?;
    rows.collect()
}

/// Runs the users-with-phones request, `:phones` replaced by the quoted list
/// as Flexisip does.
pub fn run_users_with_phones_request(
    conn: &Connection,
    sql: &str,
    phones: &[&str],
) -> rusqlite::Result<Vec<(String, String, String)>> {
    let list: Vec<String> = phones.iter().map(|p| format!("'{}'", p.replace('\'', "''"))).collect();
    let sql = sql.replace(":phones", &list.join(","));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}
