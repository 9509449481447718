//! REST API: authentication, account administration, JSON rules.

mod common;
use common::*;
use serde_json::json;

#[test]
fn ping_answers_pong() {
    let server = Server::start(&[]);
    let resp = server.get("/api/ping").send().expect(200);
    assert_eq!(resp.text(), "pong");
}

#[test]
fn admin_creates_and_reads_an_account() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    let created = create_account(&server, &key, json!({"username": "bobby1", "password": "secret123", "algorithm": "SHA-256"}));
    assert_eq!(created["username"], "bobby1");
    assert_eq!(created["activated"], false);
    let id = created["id"].as_i64().unwrap();
    let shown = server.get(&format!("/api/accounts/{id}")).key(&key).send().expect(200).json();
    assert_eq!(shown["domain"], DOMAIN);
}
