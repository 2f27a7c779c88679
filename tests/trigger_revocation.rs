//! A leaked trigger URL must be stoppable while it is being hammered: deleting, deactivating or
//! rotating it succeeds at once (calls never change the trigger's revision), and no call that
//! starts after the revocation answered gets through — nor does one that was in flight, whose
//! callback is written only if the trigger is still as it authenticated it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Backend, Org, TestServer};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy)]
enum Revocation {
    Delete,
    Deactivate,
    Rotate,
}

async fn published_flow(org: &Org) -> String {
    let created = org
        .post("/v1/flows", json!({"name": "Leaky", "data": {"a": 1}}))
        .await;
    let slug = created.expect(201)["slug"].as_str().unwrap().to_owned();
    org.post(&format!("/v1/flows/{slug}/publish"), json!({}))
        .await
        .expect(200);
    slug
}

async fn revoke(org: &Org, slug: &str, trigger: &str, how: Revocation) -> u16 {
    let path = format!("/v1/flows/{slug}/callbacks/{trigger}");
    let answer = match how {
        Revocation::Delete => org.delete(&path).await,
        Revocation::Deactivate => org.put(&path, json!({"status": "inactive"})).await,
        Revocation::Rotate => org.put(&path, json!({"rotate_signature": true})).await,
    };
    answer.status
}

async fn revoking_a_trigger_while_it_is_called_succeeds_and_stops_it_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let org = server.org().await;
    let slug = published_flow(&org).await;
    for how in [
        Revocation::Delete,
        Revocation::Deactivate,
        Revocation::Rotate,
    ] {
        let created = org
            .post(&format!("/v1/flows/{slug}/callbacks"), json!({}))
            .await;
        let created = created.expect(201).clone();
        let (trigger, url) = (
            created["id"].as_str().unwrap().to_owned(),
            created["url"].as_str().unwrap().to_owned(),
        );
        let before = callbacks_of(&org, &slug).await;

        let revoked = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let (url, revoked, accepted, stop) =
                    (url.clone(), revoked.clone(), accepted.clone(), stop.clone());
                let client = common::http_client();
                tokio::spawn(async move {
                    let mut late = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        // Read before sending: a call that starts after the revocation answered.
                        let after_revocation = revoked.load(Ordering::SeqCst);
                        let status = client
                            .post(&url)
                            .json(&json!({"to_number": "+15557654321"}))
                            .send()
                            .await
                            .expect("the server answers")
                            .status()
                            .as_u16();
                        if status == 201 {
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                        if after_revocation {
                            late.push(status);
                        }
                    }
                    late
                })
            })
            .collect();
        common::eventually("calls get through", Duration::from_secs(20), || async {
            (accepted.load(Ordering::SeqCst) >= 4).then_some(())
        })
        .await;

        assert_eq!(revoke(&org, &slug, &trigger, how).await, 200, "{how:?}");
        revoked.store(true, Ordering::SeqCst);
        // Calls made after it answered: the hammering callers' next ones, and these.
        let mut late = Vec::new();
        for _ in 0..3 {
            let probe = common::http_client()
                .post(&url)
                .json(&json!({"to_number": "+15557654321"}))
                .send()
                .await
                .unwrap();
            late.push(probe.status().as_u16());
        }
        stop.store(true, Ordering::SeqCst);
        for caller in callers {
            late.extend(caller.await.unwrap());
        }
        let refused = match how {
            Revocation::Deactivate => 403,
            Revocation::Delete | Revocation::Rotate => 404,
        };
        assert!(
            late.iter().all(|status| *status == refused),
            "{how:?}: calls after the revocation answered {late:?}"
        );

        // Every call answered 201 made exactly one callback; no other was made.
        let made = callbacks_of(&org, &slug).await - before;
        assert_eq!(made, accepted.load(Ordering::SeqCst), "{how:?}");
    }
}

async fn callbacks_of(org: &Org, slug: &str) -> usize {
    let mut count = 0;
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(token) => format!("/v1/callbacks?flow={slug}&limit=100&next_page_token={token}"),
            None => format!("/v1/callbacks?flow={slug}&limit=100"),
        };
        let page = org.get(&path).await.expect(200).clone();
        count += page["callbacks"].as_array().unwrap().len();
        match page.get("next_page_token").and_then(Value::as_str) {
            Some(next) => token = Some(next.to_owned()),
            None => return count,
        }
    }
}

on_every_store!(revoking_a_trigger_while_it_is_called_succeeds_and_stops_it_at_once);
