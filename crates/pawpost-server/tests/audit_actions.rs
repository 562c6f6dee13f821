//! The audit actions the server records and the ones the web app words
//! (`web/js/views/activity.js`) are the same list: a new action the app does not word,
//! or a wording for an action the server never records, fails here; so does an API
//! document that lists other names.
use pawpost_server::audit::AuditAction;
use pawpost_testkit::server::TestServer;
use std::collections::BTreeSet;

/// The action names `activity.js` matches, from its `case 'name':` lines.
fn actions_the_web_app_words() -> BTreeSet<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../web/js/views/activity.js"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}; run the tests from the repository"));
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("case '"))
        .filter_map(|rest| rest.split_once("':"))
        .map(|(name, _)| name.to_owned())
        .collect()
}

#[test]
fn the_web_app_words_every_audit_action_and_no_other() {
    let server: BTreeSet<String> = AuditAction::ALL
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    let web = actions_the_web_app_words();
    let unworded: Vec<_> = server.difference(&web).collect();
    assert!(
        unworded.is_empty(),
        "activity.js has no wording for {unworded:?}: add a case to describe()"
    );
    let unknown: Vec<_> = web.difference(&server).collect();
    assert!(
        unknown.is_empty(),
        "activity.js words {unknown:?}, which the server never records: \
         add them to AuditAction or remove the cases"
    );
    assert_eq!(web.len(), AuditAction::ALL.len());
}

#[test]
fn audit_actions_keep_their_names_in_json() {
    for action in AuditAction::ALL {
        assert_eq!(
            serde_json::to_value(action).unwrap(),
            serde_json::Value::String(action.as_str().to_owned())
        );
        assert_eq!(AuditAction::parse(action.as_str()), Some(*action));
    }
}

#[tokio::test]
async fn the_api_document_lists_every_audit_action() {
    let server = TestServer::start().await;
    let (_, doc) = server.anonymous().get("/api/openapi.json").await;
    let listed: BTreeSet<&str> = doc["components"]["schemas"]["AuditAction"]["enum"]
        .as_array()
        .expect("the document describes AuditAction as an enum of names")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let known: BTreeSet<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
    assert_eq!(listed, known);
    let action = &doc["components"]["schemas"]["AuditView"]["properties"]["action"];
    assert!(
        action.to_string().contains("AuditAction"),
        "an audit entry's action refers to AuditAction: {action}"
    );
}
