//! The devices Flexisip's registrar keeps in Redis (api.md section 5.7,
//! operations.md section 7), through a minimal RESP2 client over a
//! `TcpStream` with connect, read and write timeouts.
//!
//! Layout: one hash per address of record, key `fs:{user}@{domain}`; field =
//! the contact key (for Linphone devices the `+sip.instance` value as sent,
//! e.g. `"<urn:uuid:…>"`; otherwise a generated `fs-gen-…`); value = a
//! serialised Contact header such as
//!
//! ```text
//! <sip:alice@192.0.2.10:50342;transport=tls;pn-provider=apns;fs-conn-id=…;callid=…;expires=3600;cseq=21;updatedAt=1700000000;alias=no;usedAsRoute=no?path=%3Csip:…%3E&accept=…&user-agent=LinphoneiOS%2F5.2.1%20(iPhone)>;+sip.instance="<urn:uuid:…>";+org.linphone.specs="…";expires=3600
//! ```
//!
//! i.e. Flexisip's bookkeeping parameters inside the URI, `Path`/`Accept`/
//! `User-Agent` as URL-encoded URI headers after `?`, and the original
//! contact parameters after `>`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use percent_encoding::percent_decode_str;

use super::{truncate, NotifyError};

/// What the caller fills from the `REDIS_*` keys.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub host: String,
    pub port: u16,
    /// `AUTH <password>` when not empty.
    pub password: String,
    /// `SELECT <db>` when not 0.
    pub db: i64,
    /// Connect timeout, and read/write timeout of each command.
    pub timeout: Duration,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            host: "127.0.0.1".into(),
            port: 6379,
            password: String::new(),
            db: 0,
            timeout: Duration::from_secs(2),
        }
    }
}

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Null bulk string or null array.
    Nil,
    /// `+OK`.
    Simple(String),
    /// `-ERR ...` (returned by [`Connection::command`] as `Rejected`).
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Array(Vec<Value>),
}

const MAX_LINE: usize = 64 * 1024;
const MAX_BULK: usize = 16 * 1024 * 1024;
const MAX_ARRAY: usize = 1_000_000;
const MAX_DEPTH: usize = 8;

fn protocol(msg: &str) -> NotifyError {
    NotifyError::Unavailable(format!("Redis protocol error: {msg}"))
}

fn io_error(e: std::io::Error) -> NotifyError {
    NotifyError::Unavailable(format!("Redis: {e}"))
}

/// Reads one RESP2 value (bounded sizes and nesting).
pub fn read_value<R: BufRead>(reader: &mut R) -> Result<Value, NotifyError> {
    read_value_depth(reader, 0)
}

fn read_line<R: BufRead>(reader: &mut R) -> Result<String, NotifyError> {
    let mut line = Vec::new();
    let n = reader.by_ref().take(MAX_LINE as u64 + 2).read_until(b'\n', &mut line).map_err(io_error)?;
    if n == 0 {
        return Err(NotifyError::Unavailable("Redis closed the connection".into()));
    }
    if !line.ends_with(b"\r\n") {
        return Err(protocol("line not terminated by CRLF"));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| protocol("non UTF-8 status line"))
}

fn read_value_depth<R: BufRead>(reader: &mut R, depth: usize) -> Result<Value, NotifyError> {
    if depth > MAX_DEPTH {
        return Err(protocol("nesting too deep"));
    }
    let line = read_line(reader)?;
    let (kind, rest) = line.split_at(line.chars().next().map(char::len_utf8).unwrap_or(0));
    match kind {
        "+" => Ok(Value::Simple(rest.to_string())),
        "-" => Ok(Value::Error(rest.to_string())),
        ":" => rest.parse().map(Value::Integer).map_err(|_| protocol("bad integer")),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| protocol("bad bulk length"))?;
            if len < 0 {
                return Ok(Value::Nil);
            }
            let len = len as usize;
            if len > MAX_BULK {
                return Err(protocol("bulk string too large"));
            }
            let mut buf = vec![0u8; len + 2];
            reader.read_exact(&mut buf).map_err(io_error)?;
            if &buf[len..] != b"\r\n" {
                return Err(protocol("bulk string not terminated by CRLF"));
            }
            buf.truncate(len);
            Ok(Value::Bulk(buf))
        }
        "*" => {
            let len: i64 = rest.parse().map_err(|_| protocol("bad array length"))?;
            if len < 0 {
                return Ok(Value::Nil);
            }
            let len = len as usize;
            if len > MAX_ARRAY {
                return Err(protocol("array too large"));
            }
            let mut items = Vec::with_capacity(len.min(1024));
            for _ in 0..len {
                items.push(read_value_depth(reader, depth + 1)?);
            }
            Ok(Value::Array(items))
        }
        _ => Err(protocol(&format!("unexpected reply {:?}", truncate(&line, 40)))),
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One Redis connection (authenticated and on the right database).
pub struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Connection {
    /// Connects (each resolved address in turn, bounded by `timeout`), then
    /// `AUTH` and `SELECT` as configured.
    pub fn open(settings: &RedisSettings) -> Result<Connection, NotifyError> {
        let timeout = if settings.timeout.is_zero() { Duration::from_secs(2) } else { settings.timeout };
        let target = format!("{}:{}", settings.host, settings.port);
        let addrs = (settings.host.as_str(), settings.port)
            .to_socket_addrs()
            .map_err(|e| NotifyError::Unavailable(format!("Redis {target}: {e}")))?;
        let mut last_error = None;
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let stream = stream.ok_or_else(|| {
            NotifyError::Unavailable(format!(
                "Redis {target}: {}",
                last_error.map(|e| e.to_string()).unwrap_or_else(|| "no address".into())
            ))
        })?;
        stream.set_read_timeout(Some(timeout)).map_err(io_error)?;
        stream.set_write_timeout(Some(timeout)).map_err(io_error)?;
        let _ = stream.set_nodelay(true);
        let writer = stream.try_clone().map_err(io_error)?;
        let mut conn = Connection { reader: BufReader::new(stream), writer };
        if !settings.password.is_empty() {
            conn.command(&[b"AUTH", settings.password.as_bytes()])?;
        }
        if settings.db != 0 {
            conn.command(&[b"SELECT", settings.db.to_string().as_bytes()])?;
        }
        Ok(conn)
    }

    /// Sends one command and reads its reply; a Redis error reply becomes `Rejected`.
    pub fn command(&mut self, args: &[&[u8]]) -> Result<Value, NotifyError> {
        self.writer.write_all(&encode_command(args)).map_err(io_error)?;
        self.writer.flush().map_err(io_error)?;
        match read_value(&mut self.reader)? {
            Value::Error(e) => Err(NotifyError::Rejected(format!("Redis: {}", truncate(&e, 200)))),
            v => Ok(v),
        }
    }

    /// `HGETALL key` as (field, value) pairs (lossy UTF-8).
    pub fn hgetall(&mut self, key: &str) -> Result<Vec<(String, String)>, NotifyError> {
        match self.command(&[b"HGETALL", key.as_bytes()])? {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    out.push((text(k), text(v)));
                }
                Ok(out)
            }
            Value::Nil => Ok(Vec::new()),
            other => Err(protocol(&format!("unexpected HGETALL reply {other:?}"))),
        }
    }

    /// `HDEL key field`: number of fields removed.
    pub fn hdel(&mut self, key: &str, field: &str) -> Result<i64, NotifyError> {
        integer(self.command(&[b"HDEL", key.as_bytes(), field.as_bytes()])?)
    }

    /// `HSET key field value`: number of fields added.
    pub fn hset(&mut self, key: &str, field: &str, value: &str) -> Result<i64, NotifyError> {
        integer(self.command(&[b"HSET", key.as_bytes(), field.as_bytes(), value.as_bytes()])?)
    }

    /// `DEL key`.
    pub fn del(&mut self, key: &str) -> Result<i64, NotifyError> {
        integer(self.command(&[b"DEL", key.as_bytes()])?)
    }

    /// `PUBLISH channel message`: number of subscribers reached.
    pub fn publish(&mut self, channel: &str, message: &str) -> Result<i64, NotifyError> {
        integer(self.command(&[b"PUBLISH", channel.as_bytes(), message.as_bytes()])?)
    }
}

fn text(v: Value) -> String {
    match v {
        Value::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::Simple(s) => s,
        Value::Integer(i) => i.to_string(),
        _ => String::new(),
    }
}

fn integer(v: Value) -> Result<i64, NotifyError> {
    match v {
        Value::Integer(i) => Ok(i),
        other => Err(protocol(&format!("expected an integer, got {other:?}"))),
    }
}

/// `HGETALL key` on a fresh connection.
pub fn hgetall(settings: &RedisSettings, key: &str) -> Result<Vec<(String, String)>, NotifyError> {
    Connection::open(settings)?.hgetall(key)
}

/// `HDEL key field` on a fresh connection.
pub fn hdel(settings: &RedisSettings, key: &str, field: &str) -> Result<i64, NotifyError> {
    Connection::open(settings)?.hdel(key, field)
}

// ---------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------

/// A device registered on the account (one Flexisip contact with an instance id).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Device {
    /// `+sip.instance` without the surrounding `"<` and `>"`, e.g. `urn:uuid:…`.
    pub uuid: String,
    /// Last REGISTER (`updatedAt`), ISO 8601 UTC: `2023-11-14T22:13:20.000000Z`.
    pub update_time: String,
    /// Decoded `User-Agent` URI header (empty when absent).
    pub user_agent: String,
    /// `updatedAt` as UNIX seconds (not serialised).
    #[serde(skip)]
    pub updated_at: i64,
}

/// The Redis key of an address of record.
pub fn record_key(username: &str, domain: &str) -> String {
    format!("fs:{username}@{domain}")
}

/// The hash field of a device: `"<` + uuid + `>"`.
pub fn device_field(uuid: &str) -> String {
    format!("\"<{uuid}>\"")
}

/// Formats UNIX seconds as `YYYY-MM-DDTHH:MM:SS.000000Z` (None when out of 0000..=9999).
pub fn iso8601(unix: i64) -> Option<String> {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some(format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000000Z", secs / 3600, secs / 60 % 60, secs % 60))
}

/// Splits `s` on `sep` outside double-quoted strings (backslash escapes inside quotes).
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            c if c == sep && !in_quotes => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// `name=value` pairs of `;`-separated parameters (names lowercased, values raw).
fn params(list: &[&str]) -> Vec<(String, String)> {
    list.iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_string()),
            None => (p.to_ascii_lowercase(), String::new()),
        })
        .collect()
}

fn find<'a>(list: &'a [(String, String)], name: &str) -> Option<&'a str> {
    list.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => v.to_string(),
    }
}

/// `"<urn:uuid:x>"` / `<urn:uuid:x>` / `urn:uuid:x` -> `urn:uuid:x`.
fn instance_id(raw: &str) -> Option<String> {
    let v = unquote(raw);
    let v = v.trim();
    let v = v.strip_prefix('<').and_then(|x| x.strip_suffix('>')).unwrap_or(v).trim();
    (!v.is_empty() && !v.chars().any(char::is_control)).then(|| v.to_string())
}

struct Contact {
    instance: Option<String>,
    updated_at: Option<i64>,
    user_agent: String,
}

/// A contact as Flexisip writes it, or wholly URL-encoded (FlexiAPI
/// decodes the whole value before reading it, so such values exist).
fn parse_contact_parts(value: &str) -> Contact {
    let contact = parse_plain_contact(value);
    if contact.instance.is_none() && value.contains('%') {
        return parse_plain_contact(&percent_decode_str(value).decode_utf8_lossy());
    }
    contact
}

fn parse_plain_contact(value: &str) -> Contact {
    let value = value.trim();
    // URI between the first '<' and its '>' (a name-addr); otherwise an
    // addr-spec up to the first ';' outside quotes.
    let (uri, header_params): (&str, &str) = match value.find('<') {
        Some(open) => match value[open + 1..].find('>') {
            Some(close) => (&value[open + 1..open + 1 + close], &value[open + 1 + close + 1..]),
            None => (&value[open + 1..], ""),
        },
        None => match value.find(';') {
            Some(i) => (&value[..i], &value[i..]),
            None => (value, ""),
        },
    };
    let (uri_main, uri_headers) = uri.split_once('?').unwrap_or((uri, ""));
    let uri_params = params(uri_main.split(';').skip(1).collect::<Vec<_>>().as_slice());
    let contact_params = params(&split_unquoted(header_params, ';'));

    let instance =
        find(&contact_params, "+sip.instance").or_else(|| find(&uri_params, "+sip.instance")).and_then(instance_id);
    let updated_at = find(&uri_params, "updatedat")
        .or_else(|| find(&contact_params, "updatedat"))
        .and_then(|v| v.trim().parse::<i64>().ok());
    let mut user_agent = String::new();
    for header in uri_headers.split('&') {
        if let Some((name, v)) = header.split_once('=') {
            let name = percent_decode_str(name).decode_utf8_lossy().to_ascii_lowercase();
            if name == "user-agent" {
                user_agent = percent_decode_str(v).decode_utf8_lossy().trim().to_string();
                break;
            }
        }
    }
    Contact { instance, updated_at, user_agent }
}

/// Parses one hash value (a serialised Contact). `None` unless it holds an
/// instance id and a valid `updatedAt`. Never panics, whatever the input.
pub fn parse_contact(value: &str) -> Option<Device> {
    let c = parse_contact_parts(value);
    let uuid = c.instance?;
    let updated_at = c.updated_at?;
    Some(Device { uuid, update_time: iso8601(updated_at)?, user_agent: c.user_agent, updated_at })
}

/// Turns `HGETALL fs:…` pairs into devices: instance id from the value (or,
/// failing that, from a `"<…>"` field), entries without instance or
/// `updatedAt` skipped, one device per uuid (the latest), newest first.
pub fn devices_from_hash(entries: &[(String, String)]) -> Vec<Device> {
    let mut devices: Vec<Device> = Vec::new();
    for (field, value) in entries {
        let c = parse_contact_parts(value);
        let field = field.trim();
        let uuid = match c.instance {
            Some(u) => u,
            None if field.starts_with("\"<") || field.starts_with('<') => match instance_id(field) {
                Some(u) => u,
                None => continue,
            },
            None => continue,
        };
        let Some(updated_at) = c.updated_at else { continue };
        let Some(update_time) = iso8601(updated_at) else { continue };
        let device = Device { uuid, update_time, user_agent: c.user_agent, updated_at };
        match devices.iter_mut().find(|d| d.uuid == device.uuid) {
            Some(existing) if existing.updated_at < device.updated_at => *existing = device,
            Some(_) => {}
            None => devices.push(device),
        }
    }
    devices.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| a.uuid.cmp(&b.uuid)));
    devices
}

/// The devices of `username@domain` (`HGETALL fs:username@domain`). The
/// caller logs an error and shows an empty list.
pub fn list_devices(settings: &RedisSettings, username: &str, domain: &str) -> Result<Vec<Device>, NotifyError> {
    let entries = hgetall(settings, &record_key(username, domain))?;
    Ok(devices_from_hash(&entries))
}

/// Removes a device: `HDEL fs:username@domain "<uuid>"`, then
/// `PUBLISH username@domain ""` so Flexisip refreshes its view (its failure
/// is ignored). Removing an unknown device is not an error.
pub fn delete_device(settings: &RedisSettings, username: &str, domain: &str, uuid: &str) -> Result<(), NotifyError> {
    let uuid = uuid.trim();
    if uuid.is_empty() {
        return Err(NotifyError::Invalid("empty device uuid".into()));
    }
    let mut conn = Connection::open(settings)?;
    conn.hdel(&record_key(username, domain), &device_field(uuid))?;
    let _ = conn.publish(&format!("{username}@{domain}"), "");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::net::TcpListener;
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    const REALISTIC: &str = "<sip:alice@192.0.2.10:50342;transport=tls;pn-provider=apns;pn-prid=0123ABCD:remote&4567EF:voip;pn-param=ABCDE12345.org.linphone.phone.remote&voip;fs-conn-id=7f3a2c00d1e0;callid=Pq8ZMJc~Kx;expires=3600;cseq=21;updatedAt=1700000000;alias=no;usedAsRoute=no?path=%3Csip:192.0.2.1:5061%3Btransport%3Dtls%3Bfs-proxy-id%3D5c8e%3Blr%3E&accept=application/sdp,text/plain,application/vnd.gsma.rcs-ft-http%2Bxml&user-agent=LinphoneiOS/5.2.1%20(iPhone%20de%20Alice)%20LinphoneSDK/5.3.0%20(tags/5.3.0)>;+sip.instance=\"<urn:uuid:6f1c4a2e-0b5c-4e8e-9b7a-2d3f4e5a6b7c>\";+org.linphone.specs=\"conference/1.0,ephemeral/1.1,groupchat/1.2,lime\";expires=3600";

    #[test]
    fn parses_a_flexisip_contact() {
        let d = parse_contact(REALISTIC).unwrap();
        assert_eq!(d.uuid, "urn:uuid:6f1c4a2e-0b5c-4e8e-9b7a-2d3f4e5a6b7c");
        assert_eq!(d.update_time, "2023-11-14T22:13:20.000000Z");
        assert_eq!(d.updated_at, 1_700_000_000);
        assert_eq!(d.user_agent, "LinphoneiOS/5.2.1 (iPhone de Alice) LinphoneSDK/5.3.0 (tags/5.3.0)");
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"uuid": d.uuid, "update_time": "2023-11-14T22:13:20.000000Z", "user_agent": d.user_agent})
        );
        // header name case and a contact without user agent
        let v = "<sip:bob@h;updatedAt=86400?User-Agent=X%2F1>;+SIP.INSTANCE=\"<urn:uuid:b>\"";
        let d = parse_contact(v).unwrap();
        assert_eq!(
            (d.uuid.as_str(), d.update_time.as_str(), d.user_agent.as_str()),
            ("urn:uuid:b", "1970-01-02T00:00:00.000000Z", "X/1")
        );
        let d = parse_contact("<sip:c@h;updatedAt=5>;+sip.instance=\"<urn:uuid:c>\"").unwrap();
        assert_eq!(d.user_agent, "");
        // The same contact wholly URL-encoded.
        let encoded: String =
            percent_encoding::utf8_percent_encode(REALISTIC, percent_encoding::NON_ALPHANUMERIC).to_string();
        let d = parse_contact(&encoded).unwrap();
        assert_eq!(d.uuid, "urn:uuid:6f1c4a2e-0b5c-4e8e-9b7a-2d3f4e5a6b7c");
        assert_eq!(d.updated_at, 1_700_000_000);
    }

    #[test]
    fn skips_incomplete_and_garbage() {
        assert!(parse_contact("<sip:x@h;updatedAt=1>").is_none()); // no instance
        assert!(parse_contact("<sip:x@h>;+sip.instance=\"<urn:uuid:x>\"").is_none()); // no updatedAt
        assert!(parse_contact("<sip:x@h;updatedAt=abc>;+sip.instance=\"<urn:uuid:x>\"").is_none());
        assert!(parse_contact("<sip:x@h;updatedAt=999999999999999>;+sip.instance=\"<urn:uuid:x>\"").is_none());
        assert!(parse_contact("<sip:x@h;updatedAt=1>;+sip.instance=\"<>\"").is_none());
        for garbage in [
            "",
            "<",
            ">",
            "<>",
            ";;;",
            "=",
            "\"",
            "<sip:é@ü;updatedAt=%%%?&&==>;\"",
            "?user-agent=%FF%FE",
            "<sip:a;updatedAt=-99999999999999999999>",
            "+sip.instance=\"<\\",
            "\u{0}\u{1}<;>",
            "<?user-agent=%>",
            "<sip:x;updatedAt=1?user-agent=%E2%82>;+sip.instance=\"<a>\"",
        ] {
            let _ = parse_contact(garbage);
        }
        // every prefix of a realistic value
        for i in 0..=REALISTIC.len() {
            if REALISTIC.is_char_boundary(i) {
                let _ = parse_contact(&REALISTIC[..i]);
            }
        }
        let d = parse_contact("<sip:x;updatedAt=1?user-agent=%E2%82>;+sip.instance=\"<a>\"").unwrap();
        assert_eq!(d.user_agent, "\u{fffd}");
    }

    #[test]
    fn devices_from_hash_entries() {
        let entries = vec![
            ("\"<urn:uuid:6f1c4a2e-0b5c-4e8e-9b7a-2d3f4e5a6b7c>\"".to_string(), REALISTIC.to_string()),
            ("fs-gen-1234".to_string(), "<sip:bob@h;updatedAt=100>".to_string()), // skipped
            ("\"<urn:uuid:old>\"".to_string(), "<sip:c@h;updatedAt=50?user-agent=Old>".to_string()), // uuid from field
            ("\"<urn:uuid:old>\"".to_string(), "<sip:c@h;updatedAt=40>;+sip.instance=\"<urn:uuid:old>\"".to_string()),
        ];
        let devices = devices_from_hash(&entries);
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[0].uuid, "urn:uuid:6f1c4a2e-0b5c-4e8e-9b7a-2d3f4e5a6b7c");
        assert_eq!(devices[1].uuid, "urn:uuid:old");
        assert_eq!(devices[1].updated_at, 50);
        assert_eq!(devices[1].user_agent, "Old");
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0).as_deref(), Some("1970-01-01T00:00:00.000000Z"));
        assert_eq!(iso8601(951_782_400).as_deref(), Some("2000-02-29T00:00:00.000000Z"));
        assert_eq!(iso8601(1_684_749_600).as_deref(), Some("2023-05-22T10:00:00.000000Z"));
        assert_eq!(iso8601(-1).as_deref(), Some("1969-12-31T23:59:59.000000Z"));
        assert_eq!(iso8601(253_402_300_799).as_deref(), Some("9999-12-31T23:59:59.000000Z"));
        assert_eq!(iso8601(253_402_300_800), None);
        assert_eq!(iso8601(i64::MAX), None);
        assert_eq!(iso8601(i64::MIN), None);
    }

    #[test]
    fn resp_codec() {
        assert_eq!(
            encode_command(&[b"HDEL", b"k", b"\"<u>\""]),
            b"*3\r\n$4\r\nHDEL\r\n$1\r\nk\r\n$5\r\n\"<u>\"\r\n".to_vec()
        );
        let mut r = Cursor::new(b"*4\r\n$1\r\na\r\n$3\r\nb\r\n\r\n$-1\r\n:7\r\n+OK\r\n-ERR x\r\n*-1\r\n".to_vec());
        assert_eq!(
            read_value(&mut r).unwrap(),
            Value::Array(vec![
                Value::Bulk(b"a".to_vec()),
                Value::Bulk(b"b\r\n".to_vec()),
                Value::Nil,
                Value::Integer(7)
            ])
        );
        assert_eq!(read_value(&mut r).unwrap(), Value::Simple("OK".into()));
        assert_eq!(read_value(&mut r).unwrap(), Value::Error("ERR x".into()));
        assert_eq!(read_value(&mut r).unwrap(), Value::Nil);
        assert!(read_value(&mut r).is_err()); // EOF
        for bad in
            [&b"$99999999999\r\n"[..], b"*99999999999\r\n", b"?\r\n", b"$3\r\nabcde", b":x\r\n", b"+OK\n", b"$2\r\nab"]
        {
            assert!(read_value(&mut Cursor::new(bad.to_vec())).is_err(), "{bad:?}");
        }
        let deep = "*1\r\n".repeat(20) + ":1\r\n";
        assert!(read_value(&mut Cursor::new(deep.into_bytes())).is_err());
    }

    /// A one-shot fake Redis answering canned replies, recording the commands.
    fn fake_redis(replies: Vec<&'static [u8]>) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut seen = Vec::new();
            let mut reader = BufReader::new(s.try_clone().unwrap());
            for reply in replies {
                // read one command (array of bulk strings)
                let cmd = read_value(&mut reader).unwrap();
                if let Value::Array(items) = cmd {
                    for i in items {
                        if let Value::Bulk(b) = i {
                            seen.extend_from_slice(&b);
                            seen.push(b' ');
                        }
                    }
                    seen.push(b'\n');
                }
                s.write_all(reply).unwrap();
            }
            seen
        });
        (port, handle)
    }

    #[test]
    fn client_against_fake_server() {
        let value: &'static str =
            Box::leak(format!("*2\r\n$9\r\n\"<urn:x>\"\r\n${}\r\n{}\r\n", REALISTIC.len(), REALISTIC).into_boxed_str());
        let (port, h) = fake_redis(vec![b"+OK\r\n", b"+OK\r\n", value.as_bytes()]);
        let s = RedisSettings { port, password: "pw".into(), db: 3, ..RedisSettings::default() };
        let devices = list_devices(&s, "alice", "sip.example.org").unwrap();
        assert_eq!(devices.len(), 1);
        let seen = String::from_utf8(h.join().unwrap()).unwrap();
        assert_eq!(seen, "AUTH pw \nSELECT 3 \nHGETALL fs:alice@sip.example.org \n");

        let (port, h) = fake_redis(vec![b":1\r\n", b":0\r\n"]);
        let s = RedisSettings { port, ..RedisSettings::default() };
        delete_device(&s, "alice", "sip.example.org", "urn:uuid:6f1c").unwrap();
        let seen = String::from_utf8(h.join().unwrap()).unwrap();
        assert_eq!(seen, "HDEL fs:alice@sip.example.org \"<urn:uuid:6f1c>\" \nPUBLISH alice@sip.example.org  \n");

        let (port, _h) = fake_redis(vec![b"-WRONGPASS invalid username-password pair\r\n"]);
        let s = RedisSettings { port, password: "bad".into(), ..RedisSettings::default() };
        assert!(matches!(list_devices(&s, "a", "b"), Err(NotifyError::Rejected(_))));
    }

    #[test]
    fn unreachable_and_silent_servers() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let s = RedisSettings { port, ..RedisSettings::default() };
        assert!(matches!(list_devices(&s, "a", "b"), Err(NotifyError::Unavailable(_))));
        // accepts but never answers: bounded by the read timeout
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let s = RedisSettings { port, timeout: Duration::from_millis(300), ..RedisSettings::default() };
        let started = Instant::now();
        assert!(matches!(list_devices(&s, "a", "b"), Err(NotifyError::Unavailable(_))));
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(matches!(delete_device(&s, "a", "b", " "), Err(NotifyError::Invalid(_))));
        drop(listener);
    }

    struct RedisProcess(Child);
    impl Drop for RedisProcess {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Against a real redis-server (a required peer: a missing one fails the
    /// test unless FLEXIAPI_TESTS_ALLOW_MISSING_PEERS=1).
    #[test]
    fn real_redis_server() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--requirepass", "s3cret"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let _guard = match child {
            Ok(c) => RedisProcess(c),
            Err(e) => {
                if std::env::var("FLEXIAPI_TESTS_ALLOW_MISSING_PEERS").is_ok_and(|v| v.trim() == "1") {
                    println!("SKIPPED (FLEXIAPI_TESTS_ALLOW_MISSING_PEERS=1): redis-server: {e}");
                    return;
                }
                panic!(
                    "redis-server cannot be started ({e}): apt-get install redis-server (or bash .ci/install-deps); \
                     set FLEXIAPI_TESTS_ALLOW_MISSING_PEERS=1 to skip"
                );
            }
        };
        let s = RedisSettings { port, password: "s3cret".into(), db: 2, ..RedisSettings::default() };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut conn = loop {
            match Connection::open(&s) {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!("redis-server did not start: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let key = record_key("alice", "sip.example.org");
        conn.del(&key).unwrap();
        assert_eq!(conn.hset(&key, "\"<urn:uuid:6f1c4a2e-0b5c-4e8e-9b7a-2d3f4e5a6b7c>\"", REALISTIC).unwrap(), 1);
        assert_eq!(conn.hset(&key, "fs-gen-42", "<sip:alice@h;updatedAt=5>").unwrap(), 1);
        let devices = list_devices(&s, "alice", "sip.example.org").unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].uuid, "urn:uuid:6f1c4a2e-0b5c-4e8e-9b7a-2d3f4e5a6b7c");
        delete_device(&s, "alice", "sip.example.org", &devices[0].uuid).unwrap();
        assert!(list_devices(&s, "alice", "sip.example.org").unwrap().is_empty());
        assert_eq!(hgetall(&s, &key).unwrap().len(), 1);
        assert_eq!(hdel(&s, &key, "fs-gen-42").unwrap(), 1);
        assert_eq!(hdel(&s, &key, "fs-gen-42").unwrap(), 0);
        assert!(list_devices(&s, "nobody", "nowhere").unwrap().is_empty());
        // wrong password and wrong db
        let bad = RedisSettings { password: "nope".into(), ..s.clone() };
        assert!(matches!(list_devices(&bad, "a", "b"), Err(NotifyError::Rejected(_))));
        let bad_db = RedisSettings { db: 100_000, ..s.clone() };
        assert!(matches!(list_devices(&bad_db, "a", "b"), Err(NotifyError::Rejected(_))));
    }
}
