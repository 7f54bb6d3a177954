//! `GET/POST/DELETE /api/subscriptions` of a `minibit-peer daemon` on
//! 127.0.0.1: subscriptions given with `--subscribe` and through the API
//! are listed, kept across a restart, removed; bad requests get JSON
//! errors with the right status and change nothing. (Following a real
//! tracker is tested end to end in minibit-tracker/tests/subscribe.rs.)

mod common;

use common::daemon::{TOKEN, call, start_daemon};
use serde_json::json;

/// Nothing listens there: the daemon keeps retrying, which is fine here.
const TRACKER: &str = "http://127.0.0.1:9";

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_are_listed_added_kept_and_removed_and_bad_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let daemon = start_daemon(&state);
    let http = reqwest::Client::new();
    let url = format!("{}/api/subscriptions", daemon.api);

    let (status, list) = call(http.get(&url)).await;
    assert_eq!((status, list), (200, json!([])));
    let (status, added) = call(
        http.post(&url)
            .bearer_auth(TOKEN)
            .json(&json!({"tracker": format!("{TRACKER}/"), "glob": "*.jpg"})),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added, json!({"tracker": TRACKER, "glob": "*.jpg"}));
    let (status, added) = call(
        http.post(&url)
            .bearer_auth(TOKEN)
            .json(&json!({"tracker": TRACKER})),
    )
    .await;
    assert_eq!(status, 201, "{added}");

    for (request, expected, words) in refusals(&http, &url) {
        let (status, body) = call(request).await;
        assert_eq!(status, expected, "{body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(words),
            "{expected}: {error:?} lacks {words:?}"
        );
    }
    let both = json!([
        {"tracker": TRACKER, "glob": "*.jpg"},
        {"tracker": TRACKER, "glob": null},
    ]);
    assert_eq!(call(http.get(&url)).await, (200, both.clone()));

    // Kept across a restart (given again with --subscribe: no duplicate).
    assert!(daemon.proc.terminate().success());
    let daemon =
        common::daemon::start_daemon_with(&state, &["--subscribe", &format!("{TRACKER}#*.jpg")]);
    let url = format!("{}/api/subscriptions", daemon.api);
    assert_eq!(call(http.get(&url)).await, (200, both));

    let (status, _) = call(
        http.delete(format!("{url}?tracker={TRACKER}&glob=*.jpg"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, 204);
    let (status, list) = call(http.get(&url)).await;
    assert_eq!(
        (status, list),
        (200, json!([{"tracker": TRACKER, "glob": null}]))
    );
}

/// Refused requests to `url` (`/api/subscriptions`): each with the status
/// and words of its JSON error.
fn refusals(
    http: &reqwest::Client,
    url: &str,
) -> Vec<(reqwest::RequestBuilder, u16, &'static str)> {
    vec![
        (
            http.post(url)
                .json(&json!({"tracker": "http://127.0.0.1:1"})),
            401,
            "token",
        ),
        (
            http.post(url)
                .bearer_auth("wrong-token-0123456789")
                .json(&json!({"tracker": "http://127.0.0.1:1"})),
            401,
            "wrong",
        ),
        (
            http.post(url)
                .bearer_auth(TOKEN)
                .json(&json!({"tracker": "ftp://127.0.0.1/"})),
            400,
            "http(s)",
        ),
        (
            http.post(url)
                .bearer_auth(TOKEN)
                .json(&json!({"tracker": TRACKER, "glob": "[a"})),
            400,
            "bad glob",
        ),
        (
            http.post(url)
                .bearer_auth(TOKEN)
                .json(&json!({"tracker": TRACKER, "colour": "red"})),
            400,
            "unknown field",
        ),
        (
            http.post(url)
                .bearer_auth(TOKEN)
                .json(&json!({"tracker": TRACKER, "glob": "*.jpg"})),
            409,
            "already subscribed",
        ),
        (
            http.delete(format!("{url}?tracker={TRACKER}&glob=*.png"))
                .bearer_auth(TOKEN),
            404,
            "no subscription",
        ),
        (
            http.delete(format!("{url}?tracker={TRACKER}")),
            401,
            "token",
        ),
        (
            http.post(url)
                .bearer_auth(TOKEN)
                .header("Origin", "http://evil.example")
                .json(&json!({"tracker": "http://127.0.0.1:1"})),
            403,
            "cross-origin",
        ),
    ]
}
