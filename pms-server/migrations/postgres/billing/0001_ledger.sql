-- Billing ledger (schema `billing`). Money is integer minor units; every table that moves money
-- carries CHECK constraints so that no bug above can make the ledger inconsistent.

CREATE TABLE accounts (
    id          uuid PRIMARY KEY,
    -- One account per patient. Free-form text: the reference gRPC API types it as a string.
    patient_id  text NOT NULL CONSTRAINT accounts_patient_id_key UNIQUE,
    -- Contact details sent by the reference API. PHI: stored, never logged, never audited.
    name        text NOT NULL,
    email       text NOT NULL,
    status      text NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED', 'CLOSED')),
    -- Fixed by the first invoice.
    currency    text CHECK (currency ~ '^[A-Z]{3}$'),
    -- issued − paid + refunded; kept in step with ledger_entries in the same transaction.
    balance     bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- Source of gapless, sequential invoice numbers.
CREATE TABLE invoice_number_seq (
    id    smallint PRIMARY KEY CHECK (id = 1),
    last  bigint NOT NULL
);
INSERT INTO invoice_number_seq (id, last) VALUES (1, 0);

CREATE TABLE invoices (
    id          uuid PRIMARY KEY,
    number      bigint NOT NULL CONSTRAINT invoices_number_key UNIQUE,
    account_id  uuid NOT NULL REFERENCES accounts (id),
    status      text NOT NULL
                CHECK (status IN ('DRAFT', 'ISSUED', 'PARTIALLY_PAID', 'PAID', 'VOID')),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    total       bigint NOT NULL CHECK (total > 0),
    -- Net paid (payments − refunds): never negative, never more than the total.
    paid        bigint NOT NULL DEFAULT 0 CHECK (paid >= 0 AND paid <= total),
    due_date    date,
    created_at  timestamptz NOT NULL,
    issued_at   timestamptz,
    voided_at   timestamptz,
    updated_at  timestamptz NOT NULL,
    created_by  uuid,
    CHECK (status <> 'DRAFT' OR paid = 0),
    CHECK (status <> 'VOID' OR paid = 0)
);
CREATE INDEX invoices_account_idx ON invoices (account_id, number);

CREATE TABLE invoice_lines (
    invoice_id   uuid NOT NULL REFERENCES invoices (id),
    position     integer NOT NULL,
    description  text NOT NULL,
    quantity     bigint NOT NULL CHECK (quantity > 0),
    unit_price   bigint NOT NULL CHECK (unit_price >= 0),
    amount       bigint NOT NULL CHECK (amount = quantity * unit_price),
    PRIMARY KEY (invoice_id, position)
);

CREATE TABLE payments (
    id           uuid PRIMARY KEY,
    invoice_id   uuid NOT NULL REFERENCES invoices (id),
    account_id   uuid NOT NULL REFERENCES accounts (id),
    amount       bigint NOT NULL CHECK (amount > 0),
    currency     text NOT NULL,
    method       text NOT NULL CHECK (method IN ('CASH', 'CARD', 'INSURANCE', 'TRANSFER')),
    reference    text,
    refunded     bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount),
    received_at  timestamptz NOT NULL,
    recorded_by  uuid
);
CREATE INDEX payments_invoice_idx ON payments (invoice_id, id);

CREATE TABLE refunds (
    id          uuid PRIMARY KEY,
    payment_id  uuid NOT NULL REFERENCES payments (id),
    invoice_id  uuid NOT NULL REFERENCES invoices (id),
    account_id  uuid NOT NULL REFERENCES accounts (id),
    amount      bigint NOT NULL CHECK (amount > 0),
    currency    text NOT NULL,
    reason      text,
    created_at  timestamptz NOT NULL,
    created_by  uuid
);
CREATE INDEX refunds_payment_idx ON refunds (payment_id, id);

-- Append-only ledger: one row per balance movement, with the running balance after it.
CREATE TABLE ledger_entries (
    id             uuid PRIMARY KEY,
    account_id     uuid NOT NULL REFERENCES accounts (id),
    seq            bigint NOT NULL,
    kind           text NOT NULL
                   CHECK (kind IN ('INVOICE_ISSUED', 'PAYMENT', 'REFUND', 'INVOICE_VOIDED')),
    invoice_id     uuid NOT NULL REFERENCES invoices (id),
    payment_id     uuid REFERENCES payments (id),
    refund_id      uuid REFERENCES refunds (id),
    amount         bigint NOT NULL,
    balance_after  bigint NOT NULL,
    occurred_at    timestamptz NOT NULL,
    CONSTRAINT ledger_entries_account_seq_key UNIQUE (account_id, seq)
);

-- Idempotency-Key records: the request's hash and the result it produced, per caller and key.
CREATE TABLE idempotency_keys (
    actor_id      uuid NOT NULL,
    idem_key      text NOT NULL,
    request_hash  text NOT NULL,
    response      text NOT NULL,
    created_at    timestamptz NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (actor_id, idem_key)
);

-- Append-only audit log. Ids are UUIDv7 (time-ordered), which orders the log on both backends.
CREATE TABLE audit_log (
    id             uuid PRIMARY KEY,
    occurred_at    timestamptz NOT NULL,
    actor_id       uuid,
    actor_role     text,
    action         text NOT NULL,
    resource       text NOT NULL,
    resource_id    uuid,
    account_id     uuid,
    amount         bigint,
    outcome        text NOT NULL,
    client_ip      text,
    request_id     text
);
CREATE INDEX audit_log_account_idx ON audit_log (account_id, id);
