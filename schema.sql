-- flexiapi: the whole current schema (user_version 1).
--
-- Flexisip reads `accounts` and `passwords` through its SOCI backend, so
-- their table and column names keep FlexiAPI's meaning:
--   accounts.username / domain / activated / phone, passwords.account_id /
--   password (lowercase hex HA1 = H(username:realm:password)) / algorithm.
-- Timestamps are UTC text `YYYY-MM-DD HH:MM:SS`; booleans are 0/1.
-- Every statement here is portable SQL where SQLite allows it, so a
-- MariaDB/PostgreSQL backend can reuse it with type names swapped.

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    username VARCHAR(64) NOT NULL,
    domain VARCHAR(64) NOT NULL,
    email VARCHAR(255),
    phone VARCHAR(64),
    activated TINYINT(1) NOT NULL DEFAULT 0,
    admin TINYINT(1) NOT NULL DEFAULT 0,
    confirmation_key VARCHAR(14),
    provisioning_token VARCHAR(255),
    ip_address VARCHAR(39) NOT NULL DEFAULT '',
    user_agent VARCHAR(256) NOT NULL DEFAULT '',
    display_name VARCHAR(255),
    dtmf_protocol VARCHAR(32),
    "group" VARCHAR(64),
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE UNIQUE INDEX accounts_username_domain_unique ON accounts(username, domain);
CREATE UNIQUE INDEX accounts_phone_unique ON accounts(phone);
CREATE UNIQUE INDEX accounts_provisioning_token_unique ON accounts(provisioning_token);
CREATE INDEX accounts_email_index ON accounts(email);
CREATE INDEX accounts_domain_created_index ON accounts(domain, created_at);

-- Accounts per domain, kept by triggers: the admin listing's total is then
-- one row read instead of a count over every account.
CREATE TABLE account_counts (
    domain VARCHAR(64) PRIMARY KEY NOT NULL,
    n INTEGER NOT NULL
);
CREATE TRIGGER accounts_count_insert AFTER INSERT ON accounts BEGIN
    INSERT INTO account_counts (domain, n) VALUES (NEW.domain, 1)
        ON CONFLICT (domain) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER accounts_count_delete AFTER DELETE ON accounts BEGIN
    UPDATE account_counts SET n = n - 1 WHERE domain = OLD.domain;
END;
CREATE TRIGGER accounts_count_move AFTER UPDATE OF domain ON accounts WHEN OLD.domain <> NEW.domain BEGIN
    UPDATE account_counts SET n = n - 1 WHERE domain = OLD.domain;
    INSERT INTO account_counts (domain, n) VALUES (NEW.domain, 1)
        ON CONFLICT (domain) DO UPDATE SET n = n + 1;
END;

CREATE TABLE passwords (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    password VARCHAR(255) NOT NULL,
    algorithm VARCHAR(10) NOT NULL DEFAULT 'MD5'
);
CREATE UNIQUE INDEX passwords_account_id_algorithm_unique ON passwords(account_id, algorithm);

-- One row per DIGEST challenge emitted; `nc` is the highest nonce count seen.
-- `account_id` is NULL for challenges sent to unknown addresses (same cost,
-- never usable).
-- Keyed by the nonce itself, without a rowid: a challenge writes one b-tree
-- page (no rowid table, no sequence, no second index), and a DIGEST round
-- costs two such writes. The janitor's hourly expiry scans the table.
CREATE TABLE nonces (
    nonce VARCHAR(64) PRIMARY KEY NOT NULL,
    account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    opaque VARCHAR(64) NOT NULL,
    nc INTEGER NOT NULL DEFAULT 0,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
) WITHOUT ROWID;

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    account_id INTEGER NOT NULL UNIQUE REFERENCES accounts(id) ON DELETE CASCADE,
    "key" VARCHAR(160) NOT NULL UNIQUE,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    last_used_at DATETIME NOT NULL
);

CREATE TABLE auth_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    token VARCHAR(64) NOT NULL UNIQUE,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);

CREATE TABLE account_creation_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    token VARCHAR(255) NOT NULL UNIQUE,
    pn_provider VARCHAR(255),
    pn_param VARCHAR(255),
    pn_prid VARCHAR(255),
    used TINYINT(1) NOT NULL DEFAULT 0,
    account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX account_creation_tokens_pn_index ON account_creation_tokens(pn_provider, pn_param, pn_prid);

CREATE TABLE account_creation_request_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    token VARCHAR(64) NOT NULL UNIQUE,
    used TINYINT(1) NOT NULL DEFAULT 0,
    validated_at DATETIME,
    acc_creation_token_id INTEGER REFERENCES account_creation_tokens(id) ON DELETE CASCADE,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);

CREATE TABLE email_changed (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    account_id INTEGER NOT NULL UNIQUE REFERENCES accounts(id) ON DELETE CASCADE,
    new_email VARCHAR(255) NOT NULL,
    hash VARCHAR(255) NOT NULL UNIQUE,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);

CREATE TABLE phone_change_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    account_id INTEGER NOT NULL UNIQUE REFERENCES accounts(id) ON DELETE CASCADE,
    code VARCHAR(255) NOT NULL,
    phone VARCHAR(255) NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);

CREATE TABLE activation_expirations (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    account_id INTEGER NOT NULL UNIQUE REFERENCES accounts(id) ON DELETE CASCADE,
    expires DATETIME NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);

CREATE TABLE accounts_tombstones (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    username VARCHAR(64) NOT NULL,
    domain VARCHAR(64) NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE UNIQUE INDEX accounts_tombstones_username_domain_unique ON accounts_tombstones(username, domain);

CREATE TABLE contacts (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    contact_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE UNIQUE INDEX contacts_account_id_contact_id_unique ON contacts(account_id, contact_id);

CREATE TABLE account_types (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "key" VARCHAR(64) NOT NULL UNIQUE,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);

CREATE TABLE account_account_type (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    account_type_id INTEGER NOT NULL REFERENCES account_types(id) ON DELETE CASCADE,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE UNIQUE INDEX account_account_type_unique ON account_account_type(account_id, account_type_id);

CREATE TABLE account_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    "key" VARCHAR(255) NOT NULL,
    code VARCHAR(255) NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX account_actions_account_id_index ON account_actions(account_id);

CREATE TABLE external_accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    username VARCHAR(64) NOT NULL,
    domain VARCHAR(64) NOT NULL,
    "group" VARCHAR(64) NOT NULL DEFAULT '',
    password VARCHAR(255) NOT NULL,
    algorithm VARCHAR(10) NOT NULL DEFAULT 'MD5',
    used TINYINT(1) NOT NULL DEFAULT 0,
    account_id INTEGER REFERENCES accounts(id) ON DELETE SET NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    -- Schema 2: where the external account registers (NULL: its domain).
    realm VARCHAR(64),
    registrar VARCHAR(255),
    outbound_proxy VARCHAR(255),
    protocol VARCHAR(4)
);
CREATE UNIQUE INDEX external_accounts_username_domain_unique ON external_accounts(username, domain);

-- A Space: a SIP domain served on its own HTTP host.
CREATE TABLE spaces (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    domain VARCHAR(64) NOT NULL UNIQUE,
    host VARCHAR(255) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    super TINYINT(1) NOT NULL DEFAULT 0,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);

-- Web portal sessions, server-side so several nodes can share them.
CREATE TABLE sessions (
    id VARCHAR(64) PRIMARY KEY NOT NULL,
    account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    csrf_token VARCHAR(64) NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    created_at DATETIME NOT NULL,
    last_activity DATETIME NOT NULL
);
CREATE INDEX sessions_last_activity_index ON sessions(last_activity);

-- Fixed-window counters for rate limits (per client IP, per target).
CREATE TABLE rate_limits (
    bucket VARCHAR(255) PRIMARY KEY NOT NULL,
    window_start INTEGER NOT NULL,
    hits INTEGER NOT NULL
);
