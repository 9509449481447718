//! A loopback SMTP server for tests (std only).
//!
//! Include it with `#[path = "support/smtp_server.rs"] mod smtp_server;`.
//! It listens on `127.0.0.1:<free port>`, one thread per connection (at most
//! 32 at once), and speaks enough SMTP for lettre and other clients: EHLO /
//! HELO, AUTH PLAIN and AUTH LOGIN (any credentials are accepted), MAIL FROM,
//! RCPT TO, DATA (dot-unstuffed, 10 MiB at most), RSET, NOOP, VRFY, QUIT.
//! [`SmtpServer::start`] speaks plain SMTP only (STARTTLS is not offered,
//! `454` if asked). [`SmtpServer::start_tls`] adds TLS with a self-signed
//! certificate made at start by the `openssl` command: either STARTTLS
//! (offered in EHLO) or implicit TLS from the first byte (SMTPS); each
//! [`ReceivedMail`] says whether it came over TLS. Every accepted message is stored
//! (envelope + raw data); [`SmtpServer::wait_for`] waits for them and
//! [`ReceivedMail`] decodes the MIME parts (quoted-printable, base64,
//! RFC 2047 headers) so tests can read links and codes in the text part.
//! The server stops when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const MAX_LINE: usize = 8 * 1024;
const MAX_DATA: usize = 10 * 1024 * 1024;
const MAX_CONNECTIONS: usize = 32;
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// One message as received.
#[derive(Debug, Clone, Default)]
pub struct ReceivedMail {
    /// EHLO/HELO argument.
    pub helo: String,
    /// `MAIL FROM` address (without `<>`).
    pub mail_from: String,
    /// `RCPT TO` addresses (without `<>`).
    pub rcpt_to: Vec<String>,
    /// Whether the client authenticated, and with which user name.
    pub authenticated: bool,
    pub auth_user: Option<String>,
    /// The DATA, dot-unstuffed, CRLF line ends, without the final `.` line.
    pub data: String,
    /// Whether the message came over TLS (STARTTLS or implicit).
    pub tls: bool,
}

/// One leaf of a MIME tree, body decoded.
#[derive(Debug, Clone, Default)]
pub struct MimePart {
    /// Lowercase media type, e.g. `text/plain`.
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ReceivedMail {
    /// First value of header `name` (case-insensitive), unfolded, raw.
    pub fn header(&self, name: &str) -> Option<String> {
        let (headers, _) = split_head(&self.data);
        header_value(&parse_headers(headers), name)
    }

    /// Every header, unfolded, raw.
    pub fn headers(&self) -> Vec<(String, String)> {
        parse_headers(split_head(&self.data).0)
    }

    /// The Subject, RFC 2047 decoded.
    pub fn subject(&self) -> Option<String> {
        self.header("Subject").map(|s| decode_rfc2047(&s))
    }

    /// The leaves of the MIME tree (one leaf for a non-multipart message).
    pub fn parts(&self) -> Vec<MimePart> {
        let mut out = Vec::new();
        collect_parts(&self.data, &mut out, 0);
        out
    }

    /// The first `text/plain` part, decoded.
    pub fn text_part(&self) -> Option<String> {
        self.parts().into_iter().find(|p| p.content_type == "text/plain").map(|p| p.body)
    }

    /// The first `text/html` part, decoded.
    pub fn html_part(&self) -> Option<String> {
        self.parts().into_iter().find(|p| p.content_type == "text/html").map(|p| p.body)
    }

    /// The text part, else the HTML part, else the decoded body.
    pub fn body_text(&self) -> String {
        self.text_part()
            .or_else(|| self.html_part())
            .or_else(|| self.parts().into_iter().next().map(|p| p.body))
            .unwrap_or_default()
    }

    /// The first URL starting with `prefix` in the text part (else the HTML
    /// part), up to the next whitespace, quote or angle bracket.
    pub fn find_link(&self, prefix: &str) -> Option<String> {
        let sources = [self.text_part(), self.html_part(), Some(self.data.clone())];
        sources.into_iter().flatten().find_map(|text| find_token(&text, prefix))
    }

    /// The first run of `len` ASCII digits standing alone in the text (a PIN).
    pub fn find_code(&self, len: usize) -> Option<String> {
        let text = self.body_text();
        text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == len).map(str::to_string)
    }
}

fn find_token(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)?;
    let rest = &text[start..];
    let end = rest.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>')).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

fn split_head(raw: &str) -> (&str, &str) {
    if let Some(i) = raw.find("\r\n\r\n") {
        (&raw[..i], &raw[i + 4..])
    } else if let Some(i) = raw.find("\n\n") {
        (&raw[..i], &raw[i + 2..])
    } else if let Some(body) = raw.strip_prefix("\r\n") {
        ("", body)
    } else {
        (raw, "")
    }
}

fn parse_headers(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = out.last_mut() {
                last.1.push_str(line);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

fn header_value(headers: &[(String, String)], name: &str) -> Option<String> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
}

/// Value of parameter `name` in a header like `multipart/alternative; boundary="x"`.
fn header_param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn collect_parts(raw: &str, out: &mut Vec<MimePart>, depth: usize) {
    let (head, body) = split_head(raw);
    let headers = parse_headers(head);
    let content_type_full = header_value(&headers, "Content-Type").unwrap_or_else(|| "text/plain".into());
    let content_type = content_type_full.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if content_type.starts_with("multipart/") && depth < 8 {
        if let Some(boundary) = header_param(&content_type_full, "boundary") {
            let delimiter = format!("--{boundary}");
            let mut current: Option<String> = None;
            for line in body.split('\n') {
                let bare = line.strip_suffix('\r').unwrap_or(line);
                if bare == delimiter || bare == format!("{delimiter}--") {
                    if let Some(part) = current.take() {
                        collect_parts(&part, out, depth + 1);
                    }
                    if bare.ends_with("--") && bare != delimiter {
                        break;
                    }
                    current = Some(String::new());
                } else if let Some(part) = current.as_mut() {
                    part.push_str(line);
                    part.push('\n');
                }
            }
            return;
        }
    }
    let encoding = header_value(&headers, "Content-Transfer-Encoding").unwrap_or_default().to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => decode_base64(body),
        _ => body.as_bytes().to_vec(),
    };
    let mut text = String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
    // the line end before a boundary belongs to the boundary
    if text.ends_with('\n') && encoding != "base64" {
        text.pop();
    }
    out.push(MimePart { content_type, headers, body: text });
}

/// Decodes quoted-printable (soft line breaks, `=XX`); invalid escapes are kept.
pub fn decode_quoted_printable(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if b.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let (Some(h), Some(l)) = (b.get(i + 1).and_then(|c| hex_val(*c)), b.get(i + 2).and_then(|c| hex_val(*c)))
            {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes standard base64, ignoring whitespace; stops at `=` padding.
pub fn decode_base64(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?B?...?=`, `=?utf-8?Q?...?=`);
/// whitespace between two encoded words is dropped.
pub fn decode_rfc2047(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    let mut last_was_word = false;
    while !rest.is_empty() {
        if let Some(start) = rest.find("=?") {
            let (before, candidate) = rest.split_at(start);
            if let Some((decoded, consumed)) = decode_word(candidate) {
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&decoded);
                rest = &candidate[consumed..];
                last_was_word = true;
                continue;
            }
            out.push_str(before);
            out.push_str("=?");
            rest = &candidate[2..];
            last_was_word = false;
        } else {
            out.push_str(rest);
            break;
        }
    }
    out
}

fn decode_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let mut fields = inner.splitn(3, '?');
    let _charset = fields.next()?;
    let encoding = fields.next()?;
    let rest = fields.next()?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    let bytes = match encoding {
        "B" | "b" => decode_base64(text),
        "Q" | "q" => decode_quoted_printable(&text.replace('_', " ")),
        _ => return None,
    };
    let consumed = 2 + _charset.len() + 1 + encoding.len() + 1 + end + 2;
    Some((String::from_utf8_lossy(&bytes).into_owned(), consumed))
}

/// How [`SmtpServer::start_tls`] offers TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connection, `STARTTLS` offered in EHLO.
    StartTls,
    /// TLS from the first byte (SMTPS, like port 465).
    Implicit,
}

/// A self-signed certificate (CN and SAN `localhost`, `127.0.0.1`) made by
/// `openssl req` in `dir`; returns the TLS server configuration.
pub fn self_signed_config(dir: &std::path::Path) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (cert, key) = (dir.join("smtp-cert.pem"), dir.join("smtp-key.pem"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!("openssl req failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}

struct Shared {
    messages: Mutex<Vec<ReceivedMail>>,
    stop: AtomicBool,
    reject_recipients: AtomicBool,
    connections: AtomicUsize,
}

/// The server; stops accepting when dropped.
pub struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl SmtpServer {
    /// Binds `127.0.0.1:0` and starts accepting (plain SMTP).
    pub fn start() -> SmtpServer {
        SmtpServer::start_with(None)
    }

    /// Like [`SmtpServer::start`], with TLS as `mode` says, using the
    /// self-signed certificate [`self_signed_config`] makes in `dir`.
    pub fn start_tls(mode: TlsMode, dir: &std::path::Path) -> Result<SmtpServer, String> {
        Ok(SmtpServer::start_with(Some((mode, self_signed_config(dir)?))))
    }

    fn start_with(tls: Option<(TlsMode, Arc<rustls::ServerConfig>)>) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback SMTP server");
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let shared = Arc::new(Shared {
            messages: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            reject_recipients: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
        });
        let s = shared.clone();
        let acceptor = std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if s.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                            s.connections.fetch_sub(1, Ordering::SeqCst);
                            let mut stream = stream;
                            let _ = stream.write_all(b"421 too many connections\r\n");
                            continue;
                        }
                        let s2 = s.clone();
                        let tls = tls.clone();
                        std::thread::spawn(move || {
                            let _ = session(stream, &s2, tls);
                            s2.connections.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        SmtpServer { addr, shared, acceptor: Some(acceptor) }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Messages received so far.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Waits until at least `count` messages arrived (or `timeout`), returns them all.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= count || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Messages whose envelope recipients include `address` (case-insensitive).
    pub fn messages_to(&self, address: &str) -> Vec<ReceivedMail> {
        self.messages().into_iter().filter(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(address))).collect()
    }

    /// Forgets the stored messages.
    pub fn clear(&self) {
        if let Ok(mut m) = self.shared.messages.lock() {
            m.clear();
        }
    }

    /// When on, every RCPT TO is refused with `550` (permanent failure).
    pub fn set_reject_recipients(&self, on: bool) {
        self.shared.reject_recipients.store(on, Ordering::SeqCst);
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

/// Reads one line (up to LF) of at most `MAX_LINE` bytes; `None` at EOF.
/// A connection, plain or TLS.
trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

type Reader = BufReader<Box<dyn Io>>;

fn read_line(reader: &mut Reader) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let n = reader.by_ref().take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.len() > MAX_LINE {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "line too long"));
    }
    while line.last() == Some(&b'\n') || line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(line))
}

fn angle_address(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if b > a => arg[a + 1..b].to_string(),
        _ => arg.split_whitespace().next().unwrap_or("").to_string(),
    }
}

enum Outcome {
    Done,
    StartTls,
}

fn send(reader: &mut Reader, bytes: &[u8]) -> std::io::Result<()> {
    let w = reader.get_mut();
    w.write_all(bytes)?;
    w.flush()
}

fn session(
    stream: TcpStream,
    shared: &Shared,
    tls: Option<(TlsMode, Arc<rustls::ServerConfig>)>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(IDLE_TIMEOUT))?;
    let wrap = |stream: TcpStream, config: &Arc<rustls::ServerConfig>| -> std::io::Result<Reader> {
        let conn = rustls::ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
        Ok(BufReader::new(Box::new(rustls::StreamOwned::new(conn, stream)) as Box<dyn Io>))
    };
    match tls {
        Some((TlsMode::Implicit, config)) => dialogue(wrap(stream, &config)?, shared, false, true, true).map(|_| ()),
        Some((TlsMode::StartTls, config)) => {
            let plain = BufReader::new(Box::new(stream.try_clone()?) as Box<dyn Io>);
            match dialogue(plain, shared, true, false, true)? {
                Outcome::Done => Ok(()),
                Outcome::StartTls => dialogue(wrap(stream, &config)?, shared, false, true, false).map(|_| ()),
            }
        }
        None => dialogue(BufReader::new(Box::new(stream) as Box<dyn Io>), shared, false, false, true).map(|_| ()),
    }
}

/// The SMTP dialogue on one (plain or TLS) stream. `offer_tls`: STARTTLS is
/// offered and ends this dialogue with [`Outcome::StartTls`].
fn dialogue(
    mut reader: Reader,
    shared: &Shared,
    offer_tls: bool,
    is_tls: bool,
    greet: bool,
) -> std::io::Result<Outcome> {
    macro_rules! out {
        ($bytes:expr) => {
            send(&mut reader, $bytes)
        };
    }
    if greet {
        out!(b"220 localhost ESMTP flexiapi-test\r\n")?;
    }
    let mut current = ReceivedMail { tls: is_tls, ..ReceivedMail::default() };
    let mut in_transaction = false;
    loop {
        let line = match read_line(&mut reader)? {
            Some(l) => String::from_utf8_lossy(&l).into_owned(),
            None => return Ok(Outcome::Done),
        };
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.to_string()),
            None => (line.to_ascii_uppercase(), String::new()),
        };
        match verb.as_str() {
            "EHLO" => {
                current.helo = arg.trim().to_string();
                if offer_tls {
                    out!(b"250-localhost\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n")?;
                } else {
                    out!(b"250-localhost\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n")?;
                }
            }
            "HELO" => {
                current.helo = arg.trim().to_string();
                out!(b"250 localhost\r\n")?;
            }
            "AUTH" => {
                let mut words = arg.split_whitespace();
                let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
                let initial = words.next().map(str::to_string);
                let user = match mechanism.as_str() {
                    "PLAIN" => {
                        let response = match initial {
                            Some(r) => r,
                            None => {
                                out!(b"334 \r\n")?;
                                String::from_utf8_lossy(&read_line(&mut reader)?.unwrap_or_default()).into_owned()
                            }
                        };
                        let decoded = decode_base64(&response);
                        let fields: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
                        fields.get(1).map(|u| String::from_utf8_lossy(u).into_owned())
                    }
                    "LOGIN" => {
                        let user = match initial {
                            Some(u) => u,
                            None => {
                                out!(b"334 VXNlcm5hbWU6\r\n")?;
                                String::from_utf8_lossy(&read_line(&mut reader)?.unwrap_or_default()).into_owned()
                            }
                        };
                        out!(b"334 UGFzc3dvcmQ6\r\n")?;
                        let _password = read_line(&mut reader)?;
                        Some(String::from_utf8_lossy(&decode_base64(&user)).into_owned())
                    }
                    _ => {
                        out!(b"504 5.5.4 unrecognized authentication type\r\n")?;
                        continue;
                    }
                };
                current.authenticated = true;
                current.auth_user = user;
                out!(b"235 2.7.0 Authentication successful\r\n")?;
            }
            "MAIL" => {
                let upper = arg.to_ascii_uppercase();
                if !upper.starts_with("FROM:") {
                    out!(b"501 5.5.4 syntax: MAIL FROM:<address>\r\n")?;
                    continue;
                }
                current.mail_from = angle_address(&arg[5..]);
                current.rcpt_to.clear();
                in_transaction = true;
                out!(b"250 2.1.0 OK\r\n")?;
            }
            "RCPT" => {
                let upper = arg.to_ascii_uppercase();
                if !in_transaction {
                    out!(b"503 5.5.1 MAIL first\r\n")?;
                } else if !upper.starts_with("TO:") {
                    out!(b"501 5.5.4 syntax: RCPT TO:<address>\r\n")?;
                } else if shared.reject_recipients.load(Ordering::SeqCst) {
                    out!(b"550 5.1.1 mailbox unavailable\r\n")?;
                } else {
                    current.rcpt_to.push(angle_address(&arg[3..]));
                    out!(b"250 2.1.5 OK\r\n")?;
                }
            }
            "DATA" => {
                if !in_transaction || current.rcpt_to.is_empty() {
                    out!(b"503 5.5.1 RCPT first\r\n")?;
                    continue;
                }
                out!(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                let mut data = String::new();
                let mut too_big = false;
                loop {
                    let l = match read_line(&mut reader)? {
                        Some(l) => l,
                        None => return Ok(Outcome::Done),
                    };
                    if l == b"." {
                        break;
                    }
                    let l = if l.starts_with(b".") { &l[1..] } else { &l[..] };
                    if data.len() + l.len() + 2 > MAX_DATA {
                        too_big = true;
                        continue;
                    }
                    data.push_str(&String::from_utf8_lossy(l));
                    data.push_str("\r\n");
                }
                if too_big {
                    out!(b"552 5.3.4 message too big\r\n")?;
                } else {
                    let mut mail = current.clone();
                    mail.data = data;
                    if let Ok(mut m) = shared.messages.lock() {
                        m.push(mail);
                    }
                    out!(b"250 2.0.0 OK queued\r\n")?;
                }
                current.rcpt_to.clear();
                current.mail_from.clear();
                in_transaction = false;
            }
            "RSET" => {
                current.rcpt_to.clear();
                current.mail_from.clear();
                in_transaction = false;
                out!(b"250 2.0.0 OK\r\n")?;
            }
            "NOOP" => out!(b"250 2.0.0 OK\r\n")?,
            "VRFY" => out!(b"252 2.0.0 cannot verify\r\n")?,
            "STARTTLS" if offer_tls => {
                out!(b"220 2.0.0 Ready to start TLS\r\n")?;
                return Ok(Outcome::StartTls);
            }
            "STARTTLS" => out!(b"454 4.7.0 TLS not available\r\n")?,
            "QUIT" => {
                out!(b"221 2.0.0 Bye\r\n")?;
                return Ok(Outcome::Done);
            }
            _ => out!(b"502 5.5.2 command not recognized\r\n")?,
        }
    }
}

#[cfg(test)]
mod self_tests {
    use super::*;

    #[test]
    fn decoders() {
        assert_eq!(decode_quoted_printable("a=3Db=\r\nc =C3=A9"), "a=bc é".as_bytes());
        assert_eq!(decode_base64("aGVsbG8gd29ybGQ="), b"hello world");
        assert_eq!(decode_rfc2047("=?utf-8?b?w6k=?= =?utf-8?q?_x?= plain"), "é x plain");
    }
}
