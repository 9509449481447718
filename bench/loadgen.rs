//! A small closed-loop HTTP load generator for `bench/run`: N keep-alive
//! connections, each sending one request after another for a duration, then
//! requests per second and latency percentiles. It speaks DIGEST itself so
//! the DIGEST benchmark pays a full challenge + response per request.
//!
//! Usage: loadgen PORT PATH SECONDS CONNECTIONS [--header 'K: V']... [--digest USER:PASSWORD:DOMAIN]

use md5::Digest;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

struct Reply {
    status: u16,
    challenge: Option<String>,
}

impl Conn {
    fn open(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nodelay(true).ok();
        Conn { reader: BufReader::new(stream.try_clone().expect("clone")), writer: stream }
    }

    fn exchange(&mut self, request: &[u8]) -> std::io::Result<Reply> {
        self.writer.write_all(request)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = 0usize;
        let mut challenge = None;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::other("closed"));
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((k, v)) = trimmed.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("www-authenticate") && challenge.is_none() {
                    challenge = Some(v.trim().to_string());
                }
            }
        }
        let mut body = vec![0u8; length];
        self.reader.read_exact(&mut body)?;
        Ok(Reply { status, challenge })
    }
}

fn param(challenge: &str, name: &str) -> String {
    let rest = challenge.split(&format!("{name}=")).nth(1).unwrap_or("");
    rest.trim_start_matches('"').split(['"', ',']).next().unwrap_or("").to_string()
}

fn hex(algorithm: &str, text: &str) -> String {
    let bytes: Vec<u8> = if algorithm == "SHA-256" {
        sha2::Sha256::digest(text.as_bytes()).to_vec()
    } else {
        md5::Md5::digest(text.as_bytes()).to_vec()
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `loadgen startup PORT PROGRAM ARGS...`: milliseconds from exec to the
/// first answered `GET /api/ping`.
fn startup(args: &[String]) {
    let port: u16 = args[0].parse().expect("port");
    let started = Instant::now();
    let mut child = std::process::Command::new(&args[1])
        .args(&args[2..])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let request = format!("GET /api/ping HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            let mut conn = Conn { reader: BufReader::new(stream.try_clone().expect("clone")), writer: stream };
            if matches!(conn.exchange(request.as_bytes()), Ok(r) if r.status == 200) {
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(20) {
            eprintln!("no answer within 20 s");
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    println!("startup_ms={:.1}", started.elapsed().as_secs_f64() * 1000.0);
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("startup") {
        return startup(&args[1..]);
    }
    if args.len() < 4 {
        eprintln!("usage: loadgen PORT PATH SECONDS CONNECTIONS [--header 'K: V']... [--digest USER:PASSWORD:DOMAIN]");
        std::process::exit(2);
    }
    let port: u16 = args[0].parse().expect("port");
    let path = args[1].clone();
    let seconds: f64 = args[2].parse().expect("seconds");
    let connections: usize = args[3].parse().expect("connections");
    let mut headers = String::new();
    let mut digest: Option<(String, String, String)> = None;
    let mut i = 4;
    while i < args.len() {
        match args[i].as_str() {
            "--header" => {
                headers.push_str(&args[i + 1]);
                headers.push_str("\r\n");
                i += 2;
            }
            "--digest" => {
                let parts: Vec<&str> = args[i + 1].splitn(3, ':').collect();
                digest = Some((parts[0].into(), parts[1].into(), parts[2].into()));
                i += 2;
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let base = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n{headers}");
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);

    let results: Vec<(Vec<u32>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..connections)
            .map(|c| {
                let base = base.clone();
                let digest = digest.clone();
                let path = path.clone();
                s.spawn(move || {
                    let mut conn = Conn::open(port);
                    let mut latencies = Vec::with_capacity(100_000);
                    let mut errors = 0usize;
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let started = Instant::now();
                        let ok = match &digest {
                            None => {
                                let request = format!("{base}\r\n");
                                matches!(conn.exchange(request.as_bytes()), Ok(r) if r.status == 200)
                            }
                            Some((user, password, domain)) => {
                                // A full DIGEST round trip: challenge, then response.
                                let from = format!("From: sip:{user}@{domain}\r\n");
                                let first = format!("{base}{from}\r\n");
                                match conn.exchange(first.as_bytes()) {
                                    Ok(Reply { status: 401, challenge: Some(ch) }) => {
                                        n += 1;
                                        let algorithm = param(&ch, "algorithm");
                                        let (realm, nonce, opaque) = (param(&ch, "realm"), param(&ch, "nonce"), param(&ch, "opaque"));
                                        let ha1 = hex(&algorithm, &format!("{user}:{realm}:{password}"));
                                        let ha2 = hex(&algorithm, &format!("GET:{path}"));
                                        let cnonce = format!("c{c}x{n}");
                                        let response = hex(&algorithm, &format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"));
                                        let auth = format!(
                                            "Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{path}\", algorithm={algorithm}, nc=00000001, cnonce=\"{cnonce}\", qop=auth, response=\"{response}\", opaque=\"{opaque}\"\r\n"
                                        );
                                        let second = format!("{base}{from}{auth}\r\n");
                                        matches!(conn.exchange(second.as_bytes()), Ok(r) if r.status == 200)
                                    }
                                    _ => false,
                                }
                            }
                        };
                        if ok {
                            latencies.push(started.elapsed().as_micros() as u32);
                        } else {
                            errors += 1;
                            conn = Conn::open(port);
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let mut all: Vec<u32> = results.iter().flat_map(|(l, _)| l.iter().copied()).collect();
    let errors: usize = results.iter().map(|(_, e)| e).sum();
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0
    };
    println!(
        "requests={} errors={} rps={:.0} p50_ms={:.2} p99_ms={:.2}",
        all.len(),
        errors,
        all.len() as f64 / seconds,
        pct(0.50),
        pct(0.99)
    );
}
