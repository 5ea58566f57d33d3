//! Everything that can happen to the app: user intents (already mapped from keys by
//! [`crate::keys`]), answers from the background worker, and terminal events. `App::update`
//! consumes one at a time; requests to the network leave the app as [`Request`]s.

use crossterm::event::KeyEvent;
use pms_cli::Error;
use pms_cli::api::Page;
use pms_proto::rest::{
    AnalyticsSummary, AuditEntry, BillingAccount, CreateInvoiceRequest, CreatePaymentRequest,
    CreateUserRequest, Invoice, Patient, PatientRequest, PatientVersion, Payment, Refund,
    RefundRequest, RegistrationBucket, Role, Statement, StoredEvent, UpdateUserRequest, User,
};
use uuid::Uuid;

/// The five tabs, in key order (`1`–`5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tab {
    Patients,
    Billing,
    Analytics,
    Events,
    Admin,
}

impl Tab {
    /// All tabs, in order.
    pub const ALL: [Tab; 5] = [
        Tab::Patients,
        Tab::Billing,
        Tab::Analytics,
        Tab::Events,
        Tab::Admin,
    ];

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Patients => "Patients",
            Tab::Billing => "Billing",
            Tab::Analytics => "Analytics",
            Tab::Events => "Events",
            Tab::Admin => "Admin",
        }
    }
}

/// Registration chart buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Day,
    Week,
    Month,
}

impl Bucket {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
        }
    }
}

/// A patient with everything the detail pane shows.
#[derive(Debug, Clone)]
pub struct PatientDetail {
    pub patient: Patient,
    pub etag: Option<String>,
    pub accounts: Vec<BillingAccount>,
    pub history: Vec<PatientVersion>,
    /// `None` when the user may not read the audit log.
    pub audit: Option<Vec<AuditEntry>>,
}

/// What the live event stream reports.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamUpdate {
    /// Opening the stream.
    Connecting,
    /// The stream is open; `resumed_after` is the `Last-Event-ID` sent, on a reconnect.
    Connected { resumed_after: Option<String> },
    /// The stream was lost; retrying in `retry_in_ms`.
    Lost { reason: String, retry_in_ms: u64 },
    /// One event (`seq` is the SSE id).
    Event(Box<StoredEvent>),
}

/// Work for the background worker: each answers with one [`Action`].
#[derive(Debug, Clone)]
pub enum Request {
    Login {
        email: String,
        password: String,
    },
    /// Who am I (role decides the Admin tab), for an existing session.
    Me,
    /// A page of patients; `cursor` is the next-page link when scrolling on.
    Patients {
        q: Option<String>,
        sort: String,
        cursor: Option<String>,
    },
    PatientDetail {
        id: Uuid,
        with_audit: bool,
    },
    SavePatient {
        id: Option<Uuid>,
        etag: Option<String>,
        body: PatientRequest,
    },
    DeletePatient {
        id: Uuid,
    },
    Accounts,
    Invoices {
        account: Uuid,
    },
    CreateInvoice {
        account: Uuid,
        body: CreateInvoiceRequest,
        idempotency_key: String,
    },
    /// `issue` or `void`.
    InvoiceAction {
        invoice: Uuid,
        action: &'static str,
        idempotency_key: String,
    },
    Pay {
        invoice: Uuid,
        body: CreatePaymentRequest,
        idempotency_key: String,
    },
    /// The payments of an invoice, to offer a refund.
    RefundCandidates {
        invoice: Uuid,
        number: String,
    },
    Refund {
        payment: Uuid,
        body: RefundRequest,
        idempotency_key: String,
    },
    /// `GET …/accounts/{id}/statement`.
    Statement {
        account: Uuid,
    },
    Summary,
    Registrations {
        bucket: Bucket,
    },
    Users,
    /// The audit log, for one patient or all.
    Audit {
        patient: Option<Uuid>,
    },
    /// `POST /auth/users`.
    CreateUser {
        body: CreateUserRequest,
    },
    /// `PATCH /auth/users/{id}`: role or disabled.
    UpdateUser {
        id: Uuid,
        body: UpdateUserRequest,
    },
    /// Start following the live event stream.
    Stream,
}

/// Which request failed (decides where the error is shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Login,
    Me,
    Patients,
    PatientDetail,
    SavePatient,
    DeletePatient,
    Accounts,
    Invoices,
    Pay,
    InvoiceAction,
    Summary,
    Registrations,
    Users,
    Audit,
    SaveUser,
    Refund,
    Statement,
}

/// One thing that happened.
#[derive(Debug)]
pub enum Action {
    /// A key press, before mapping.
    Key(KeyEvent),
    /// The terminal changed size.
    Resize(u16, u16),
    /// The slow timer: expires flash messages.
    Tick,
    // Intents (from keys).
    Quit,
    SwitchTab(Tab),
    Back,
    ToggleHelp,
    OpenPalette,
    Up,
    Down,
    PageUp,
    PageDown,
    Open,
    StartSearch,
    CycleSort,
    NewPatient,
    EditPatient,
    DeletePatient,
    /// `y` in a confirmation.
    Confirm,
    Submit,
    NextField,
    PrevField,
    /// Typing into the focused text field.
    Input(char),
    Backspace,
    RecordPayment,
    /// `Ctrl-N` / `Ctrl-D` in the invoice editor.
    AddLine,
    RemoveLine,
    /// `f`: refund a payment of the selected invoice.
    RefundPayment,
    /// `a`: the account statement.
    ShowStatement,
    NewInvoice,
    IssueInvoice,
    VoidInvoice,
    CycleBucket,
    CycleEventFilter,
    TogglePause,
    Refresh,
    // Answers from the worker.
    LoggedIn {
        email: String,
        role: Option<Role>,
    },
    PatientsLoaded {
        append: bool,
        page: Page<Patient>,
    },
    PatientDetailLoaded(Box<PatientDetail>),
    PatientSaved(Box<Patient>),
    PatientDeleted(Uuid),
    AccountsLoaded(Vec<BillingAccount>),
    InvoicesLoaded {
        account: Uuid,
        invoices: Vec<Invoice>,
    },
    PaymentRecorded(Box<Payment>),
    InvoiceChanged(Box<Invoice>),
    /// The payments of an invoice (answer to `RefundCandidates`).
    PaymentsLoaded {
        number: String,
        payments: Vec<Payment>,
    },
    Refunded(Box<Refund>),
    StatementLoaded(Box<Statement>),
    SummaryLoaded(Box<AnalyticsSummary>),
    RegistrationsLoaded(Vec<RegistrationBucket>),
    UsersLoaded(Vec<User>),
    AuditLoaded(Vec<AuditEntry>),
    /// A user was created or changed.
    UserSaved(Box<User>),
    Stream(StreamUpdate),
    Failed {
        op: Op,
        error: Error,
    },
}
