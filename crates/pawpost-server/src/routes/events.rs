//! `GET /api/v1/events`: the live updates of [`crate::events`] as Server-Sent Events.
use crate::auth::Auth;
use crate::error::{ApiError, ErrorBody};
use crate::events::{Change, Subscription, KEEPALIVE_INTERVAL, RECONNECT_AFTER};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use pawpost_domain::Session;
use std::convert::Infallible;
use time::OffsetDateTime;

pub const TAG: &str = "events";

/// Live updates while the app is open: a `text/event-stream` whose events are named by
/// what changed (`member`, `message`, `receipt`, `toy`, `roster`, `household`) and whose
/// data is a [`Change`] in JSON: ids only, never content. Fetch what changed through the
/// other endpoints. The stream carries changes in the signed-in account's households
/// only, ends when its session ends, and sends a comment line every 20 seconds when
/// nothing happens. At most 8 streams per account are open on one server process.
#[utoipa::path(get, path = "/api/v1/events", tag = TAG,
    responses(
        (status = 200, description = "A stream of Server-Sent Events, each with a Change as data", content_type = "text/event-stream", body = Change),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 429, description = "Too many streams open for this account; close a tab or try again later", body = ErrorBody),
    ))]
pub async fn events(State(state): State<AppState>, auth: Auth) -> Response {
    let Ok(subscription) = state.events.subscribe(auth.account.id) else {
        return ApiError::too_many(
            RECONNECT_AFTER,
            "this account has too many live pages open; close some tabs and reload this one",
        )
        .into_response();
    };
    let mut response = Sse::new(changes(state, auth.session, subscription)).into_response();
    // Proxies that buffer answers (nginx) would hold the events back.
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}

/// What a stream does next.
struct Open {
    state: AppState,
    session: Session,
    subscription: Subscription,
    keepalive: tokio::time::Interval,
    started: bool,
}

enum Next {
    /// A change, or `None` when the stream ends (the server stops).
    Change(Option<Change>),
    Keepalive,
}

fn changes(
    state: AppState,
    session: Session,
    subscription: Subscription,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let mut keepalive = tokio::time::interval(KEEPALIVE_INTERVAL);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let open = Open {
        state,
        session,
        subscription,
        keepalive,
        started: false,
    };
    stream::unfold(open, |mut open| async move {
        if !open.started {
            // First, so that the browser learns the pause before reconnecting and the
            // app knows its stream is open (it refetches: it may have missed changes).
            open.started = true;
            open.keepalive.reset();
            let hello = Event::default()
                .event("ready")
                .retry(RECONNECT_AFTER)
                .data("{}");
            return Some((Ok(hello), open));
        }
        let next = tokio::select! {
            change = open.subscription.changes.recv() => Next::Change(change),
            _ = open.keepalive.tick() => Next::Keepalive,
            _ = open.subscription.closing.wait_for(|closing| *closing) => Next::Change(None),
        };
        match next {
            Next::Change(change) => {
                let change = change?;
                let event = Event::default()
                    .event(change.kind.as_str())
                    .json_data(&change)
                    .unwrap_or_else(|_| Event::default().comment("unreadable change"));
                Some((Ok(event), open))
            }
            Next::Keepalive => {
                let now = OffsetDateTime::now_utc();
                let alive = open
                    .state
                    .store
                    .session_by_token_hash(&open.session.token_hash, now)
                    .await
                    // A store hiccup is no reason to drop the stream.
                    .map_or(true, |s| s.is_some());
                alive.then(|| (Ok(Event::default().comment("")), open))
            }
        }
    })
}
