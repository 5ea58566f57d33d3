-- Billing ledger (SQLite file `billing.db`). Money is integer minor units; every table that moves
-- money carries CHECK constraints so that no bug above can make the ledger inconsistent.

CREATE TABLE accounts (
    id          BLOB PRIMARY KEY,
    -- One account per patient. Free-form text: the reference gRPC API types it as a string.
    patient_id  TEXT NOT NULL CONSTRAINT accounts_patient_id_key UNIQUE,
    -- Contact details sent by the reference API. PHI: stored, never logged, never audited.
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED', 'CLOSED')),
    -- Fixed by the first invoice.
    currency    TEXT CHECK (length(currency) = 3),
    -- issued − paid + refunded; kept in step with ledger_entries in the same transaction.
    balance     INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Source of gapless, sequential invoice numbers.
CREATE TABLE invoice_number_seq (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    last  INTEGER NOT NULL
);
INSERT INTO invoice_number_seq (id, last) VALUES (1, 0);

CREATE TABLE invoices (
    id          BLOB PRIMARY KEY,
    number      INTEGER NOT NULL CONSTRAINT invoices_number_key UNIQUE,
    account_id  BLOB NOT NULL REFERENCES accounts (id),
    status      TEXT NOT NULL
                CHECK (status IN ('DRAFT', 'ISSUED', 'PARTIALLY_PAID', 'PAID', 'VOID')),
    currency    TEXT NOT NULL CHECK (length(currency) = 3),
    total       INTEGER NOT NULL CHECK (total > 0),
    -- Net paid (payments − refunds): never negative, never more than the total.
    paid        INTEGER NOT NULL DEFAULT 0 CHECK (paid >= 0 AND paid <= total),
    due_date    TEXT,
    created_at  TEXT NOT NULL,
    issued_at   TEXT,
    voided_at   TEXT,
    updated_at  TEXT NOT NULL,
    created_by  BLOB,
    CHECK (status <> 'DRAFT' OR paid = 0),
    CHECK (status <> 'VOID' OR paid = 0)
);
CREATE INDEX invoices_account_idx ON invoices (account_id, number);

CREATE TABLE invoice_lines (
    invoice_id   BLOB NOT NULL REFERENCES invoices (id),
    position     INTEGER NOT NULL,
    description  TEXT NOT NULL,
    quantity     INTEGER NOT NULL CHECK (quantity > 0),
    unit_price   INTEGER NOT NULL CHECK (unit_price >= 0),
    amount       INTEGER NOT NULL CHECK (amount = quantity * unit_price),
    PRIMARY KEY (invoice_id, position)
);

CREATE TABLE payments (
    id           BLOB PRIMARY KEY,
    invoice_id   BLOB NOT NULL REFERENCES invoices (id),
    account_id   BLOB NOT NULL REFERENCES accounts (id),
    amount       INTEGER NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL,
    method       TEXT NOT NULL CHECK (method IN ('CASH', 'CARD', 'INSURANCE', 'TRANSFER')),
    reference    TEXT,
    refunded     INTEGER NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount),
    received_at  TEXT NOT NULL,
    recorded_by  BLOB
);
CREATE INDEX payments_invoice_idx ON payments (invoice_id, id);

CREATE TABLE refunds (
    id          BLOB PRIMARY KEY,
    payment_id  BLOB NOT NULL REFERENCES payments (id),
    invoice_id  BLOB NOT NULL REFERENCES invoices (id),
    account_id  BLOB NOT NULL REFERENCES accounts (id),
    amount      INTEGER NOT NULL CHECK (amount > 0),
    currency    TEXT NOT NULL,
    reason      TEXT,
    created_at  TEXT NOT NULL,
    created_by  BLOB
);
CREATE INDEX refunds_payment_idx ON refunds (payment_id, id);

-- Append-only ledger: one row per balance movement, with the running balance after it.
CREATE TABLE ledger_entries (
    id             BLOB PRIMARY KEY,
    account_id     BLOB NOT NULL REFERENCES accounts (id),
    seq            INTEGER NOT NULL,
    kind           TEXT NOT NULL
                   CHECK (kind IN ('INVOICE_ISSUED', 'PAYMENT', 'REFUND', 'INVOICE_VOIDED')),
    invoice_id     BLOB NOT NULL REFERENCES invoices (id),
    payment_id     BLOB REFERENCES payments (id),
    refund_id      BLOB REFERENCES refunds (id),
    amount         INTEGER NOT NULL,
    balance_after  INTEGER NOT NULL,
    occurred_at    TEXT NOT NULL,
    CONSTRAINT ledger_entries_account_seq_key UNIQUE (account_id, seq)
);

-- Idempotency-Key records: the request's hash and the result it produced, per caller and key.
CREATE TABLE idempotency_keys (
    actor_id      BLOB NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    response      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (actor_id, idem_key)
);

-- Append-only audit log. Ids are UUIDv7 (time-ordered), which orders the log on both backends.
CREATE TABLE audit_log (
    id             BLOB PRIMARY KEY,
    occurred_at    TEXT NOT NULL,
    actor_id       BLOB,
    actor_role     TEXT,
    action         TEXT NOT NULL,
    resource       TEXT NOT NULL,
    resource_id    BLOB,
    account_id     BLOB,
    amount         INTEGER,
    outcome        TEXT NOT NULL,
    client_ip      TEXT,
    request_id     TEXT
);
CREATE INDEX audit_log_account_idx ON audit_log (account_id, id);
