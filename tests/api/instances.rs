//! Several instances behind a load balancer, one PostgreSQL database: a session started on
//! one works on the others, and ending it anywhere ends it everywhere within two seconds.
use portcullis::domain::Role;

use crate::helpers::*;

async fn two_instances() -> Option<(TestApp, TestApp)> {
    let first = spawn_postgres_app().await?;
    let second = spawn_second_instance(&first).await;
    Some((first, second))
}

async fn stop(a: TestApp, b: TestApp) {
    a.server.stop(true).await;
    b.server.stop(true).await;
}

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn a_login_on_one_instance_works_on_another_and_logout_there_is_enforced_within_two_seconds() {
    let Some((a, b)) = two_instances().await else { return };
    let user = a.create_user("alice", Role::User).await;
    a.login_as(&user).await;
    let cookies = format!("portcullis={}", a.cookie("portcullis").unwrap());
    let tokens = a.api_login(&user).await;
    let client = plain_client();

    assert_eq!(client.get(b.url("/dashboard")).header("cookie", &cookies).send().await.unwrap().status(), 200);
    assert_eq!(b.get_with_bearer("/api/me", &tokens.access).await.status(), 200);

    let csrf = a.session_csrf_token().await;
    assert_eq!(a.post_form("/logout", &[("csrf_token", &csrf)]).await.status(), 303);
    assert_eq!(a.client.post(a.url("/api/logout")).bearer_auth(&tokens.access).send().await.unwrap().status(), 204);

    let cookie_refused = within(REVOCATION_LIMIT, || async {
        client.get(b.url("/dashboard")).header("cookie", &cookies).send().await.unwrap().status() == 303
    })
    .await;
    let bearer_refused =
        within(REVOCATION_LIMIT, || async { b.get_with_bearer("/api/me", &tokens.access).await.status() == 401 }).await;
    eprintln!("revocation delay on the other instance: cookie {cookie_refused:?}, bearer {bearer_refused:?}");
    assert!(cookie_refused.is_some(), "instance B still accepts the cookie 2 s after logout on A");
    assert!(bearer_refused.is_some(), "instance B still accepts the Bearer token 2 s after logout on A");
    stop(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn a_refresh_token_reused_on_another_instance_is_detected_and_ends_the_session() {
    let Some((a, b)) = two_instances().await else { return };
    let user = a.create_user("alice", Role::User).await;
    let stolen = a.api_login(&user).await;
    let legitimate = a.api_refresh(&stolen.refresh).await.expect("refresh on A");

    assert_eq!(b.api_refresh(&stolen.refresh).await.err(), Some(401), "reuse detected on B");

    assert_eq!(a.api_refresh(&legitimate.refresh).await.err(), Some(401), "the session is gone on A too");
    let refused =
        within(REVOCATION_LIMIT, || async { a.get_with_bearer("/api/me", &legitimate.access).await.status() == 401 })
            .await;
    assert!(refused.is_some(), "A still accepts the access token 2 s after reuse was detected on B");
    stop(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn the_same_refresh_token_sent_to_two_instances_at_once_rotates_only_once() {
    let Some((a, b)) = two_instances().await else { return };
    let user = a.create_user("alice", Role::User).await;
    let tokens = a.api_login(&user).await;

    let (on_a, on_b) = tokio::join!(a.api_refresh(&tokens.refresh), b.api_refresh(&tokens.refresh));

    assert_eq!(u8::from(on_a.is_ok()) + u8::from(on_b.is_ok()), 1, "exactly one rotation wins");
    let winner = on_a.or(on_b).unwrap();
    // The loser presented a token that had just been retired: for an API client that is reuse.
    assert_eq!(a.api_refresh(&winner.refresh).await.err(), Some(401));
    stop(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn failed_sign_ins_on_one_instance_count_on_the_others() {
    let Some((a, b)) = two_instances().await else { return };
    let user = a.create_user("alice", Role::User).await;
    for (n, app) in [&a, &b, &a, &b, &a].into_iter().enumerate() {
        assert_eq!(sign_in(app, "not the password at all").await, 401, "attempt {}", n + 1);
    }
    assert_eq!(sign_in(&b, &user.password).await, 429, "B knows about A's failures");
    stop(a, b).await;
}

async fn sign_in(app: &TestApp, password: &str) -> u16 {
    app.post_json("/api/token", &serde_json::json!({"username": "alice", "password": password})).await.status().as_u16()
}
