-- Imports a FlexiAPI 1.3.x SQLite database into a new, migrated flexiapi one.
--
--   flexiapi --db new.sqlite migrate
--   sqlite3 new.sqlite "ATTACH 'flexiapi-1.3.sqlite' AS old" ".read import-flexiapi-1.3.sql"
--
-- Keeps the ids, so links between rows survive. Maps FlexiAPI 1.3 to this
-- schema: accounts.creation_time -> created_at/updated_at, the first alias of
-- an account -> accounts.phone (the aliases table is gone), a row in admins ->
-- accounts.admin = 1. Passwords are copied as they are (HA1 hashes, CLRTXT
-- too): SIP clients keep working as long as ACCOUNT_REALM stays the same.
-- Short-lived rows (nonces, auth tokens, pending e-mail and phone changes)
-- are not copied. All or nothing: one transaction.

PRAGMA foreign_keys = ON;
BEGIN;

INSERT INTO accounts (id, username, domain, email, phone, activated, admin, confirmation_key,
                      provisioning_token, ip_address, user_agent, display_name, dtmf_protocol,
                      "group", created_at, updated_at)
SELECT a.id, a.username, a.domain, a.email,
       (SELECT al.alias FROM old.aliases al WHERE al.account_id = a.id ORDER BY al.id LIMIT 1),
       coalesce(a.activated, 0),
       EXISTS (SELECT 1 FROM old.admins ad WHERE ad.account_id = a.id),
       a.confirmation_key, a.provisioning_token, coalesce(a.ip_address, ''),
       substr(coalesce(a.user_agent, ''), 1, 256), a.display_name, a.dtmf_protocol, a."group",
       coalesce(a.creation_time, datetime('now')), coalesce(a.creation_time, datetime('now'))
FROM old.accounts a ORDER BY a.id;

INSERT INTO passwords (id, account_id, password, algorithm)
SELECT p.id, p.account_id, p.password, coalesce(p.algorithm, 'MD5')
FROM old.passwords p WHERE p.account_id IN (SELECT id FROM accounts);

INSERT OR IGNORE INTO api_keys (account_id, "key", created_at, updated_at, last_used_at)
SELECT k.account_id, k."key", coalesce(k.created_at, k.last_used_at), coalesce(k.updated_at, k.last_used_at), k.last_used_at
FROM old.api_keys k WHERE k.account_id IN (SELECT id FROM accounts);

INSERT OR IGNORE INTO accounts_tombstones (username, domain, created_at, updated_at)
SELECT t.username, t.domain, coalesce(t.created_at, datetime('now')), coalesce(t.updated_at, t.created_at, datetime('now'))
FROM old.accounts_tombstones t;

INSERT INTO account_types (id, "key", created_at, updated_at)
SELECT t.id, t."key", coalesce(t.created_at, datetime('now')), coalesce(t.updated_at, t.created_at, datetime('now'))
FROM old.account_types t;

INSERT OR IGNORE INTO account_account_type (account_id, account_type_id, created_at, updated_at)
SELECT x.account_id, x.account_type_id, coalesce(x.created_at, datetime('now')), coalesce(x.updated_at, x.created_at, datetime('now'))
FROM old.account_account_type x
WHERE x.account_id IN (SELECT id FROM accounts) AND x.account_type_id IN (SELECT id FROM account_types);

INSERT INTO account_actions (id, account_id, "key", code, created_at, updated_at)
SELECT x.id, x.account_id, x."key", x.code, coalesce(x.created_at, datetime('now')), coalesce(x.updated_at, x.created_at, datetime('now'))
FROM old.account_actions x WHERE x.account_id IN (SELECT id FROM accounts);

INSERT OR IGNORE INTO contacts (account_id, contact_id, created_at, updated_at)
SELECT c.account_id, c.contact_id, coalesce(c.created_at, datetime('now')), coalesce(c.updated_at, c.created_at, datetime('now'))
FROM old.contacts c
WHERE c.account_id IN (SELECT id FROM accounts) AND c.contact_id IN (SELECT id FROM accounts);

INSERT INTO external_accounts (id, username, domain, "group", password, algorithm, used, account_id, created_at, updated_at)
SELECT e.id, e.username, e.domain, coalesce(e."group", ''), e.password, coalesce(e.algorithm, 'MD5'), coalesce(e.used, 0),
       (SELECT id FROM accounts WHERE id = e.account_id),
       coalesce(e.created_at, datetime('now')), coalesce(e.updated_at, e.created_at, datetime('now'))
FROM old.external_accounts e;

INSERT OR IGNORE INTO activation_expirations (account_id, expires, created_at, updated_at)
SELECT x.account_id, x.expires, coalesce(x.created_at, datetime('now')), coalesce(x.updated_at, x.created_at, datetime('now'))
FROM old.activation_expirations x WHERE x.account_id IN (SELECT id FROM accounts);

INSERT OR IGNORE INTO account_creation_tokens (id, token, pn_provider, pn_param, pn_prid, used, account_id, created_at, updated_at)
SELECT t.id, t.token, t.pn_provider, t.pn_param, t.pn_prid, coalesce(t.used, 0),
       (SELECT id FROM accounts WHERE id = t.account_id),
       coalesce(t.created_at, datetime('now')), coalesce(t.updated_at, t.created_at, datetime('now'))
FROM old.account_creation_tokens t;

INSERT OR IGNORE INTO account_creation_request_tokens (id, token, used, validated_at, acc_creation_token_id, created_at, updated_at)
SELECT t.id, t.token, coalesce(t.used, 0), t.validated_at,
       (SELECT id FROM account_creation_tokens WHERE id = t.acc_creation_token_id),
       coalesce(t.created_at, datetime('now')), coalesce(t.updated_at, t.created_at, datetime('now'))
FROM old.account_creation_request_tokens t;

COMMIT;
