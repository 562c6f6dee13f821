//! The column lists of the SQL stores. Their schemas name tables and columns alike by
//! design (only the column types differ), so one list serves both and every query stays
//! one static string.

/// The columns each SQL store's row type for `table` reads: `columns!(accounts)`.
#[macro_export]
macro_rules! columns {
    (accounts) => {
        "id, email, display_name, password_hash, created_at, locked, email_verified_at"
    };
    (sessions) => {
        "id, account_id, token_hash, csrf_token, created_at, expires_at, client_address, user_agent"
    };
    (password_resets) => {
        "token_hash, account_id, created_at, expires_at"
    };
    (email_verifications) => {
        "token_hash, account_id, created_at, expires_at"
    };
    (memberships) => {
        "household_id, account_id, role, status, joined_at"
    };
    (devices) => {
        "id, kind, account_id, household_id, identity, label, created_at"
    };
    (messages) => {
        "id, household_id, sender_device, sender_account, media_type, duration_ms, envelope_len, created_at, blob_key"
    };
    (pairings) => {
        "code, device_id, identity, created_at, expires_at, household_id, claimed_by, confirmation, confirm_by"
    };
    (audit_log) => {
        "seq, at, actor, household, action, target, client, prev_hash, hash"
    };
}

/// `SELECT` of a table's row columns, followed by `$rest` (written in the placeholders of
/// the store's database): `select!(accounts, "WHERE id = ?")`.
#[macro_export]
macro_rules! select {
    ($table:ident, $rest:literal) => {
        concat!(
            "SELECT ",
            $crate::columns!($table),
            " FROM ",
            stringify!($table),
            " ",
            $rest
        )
    };
}
