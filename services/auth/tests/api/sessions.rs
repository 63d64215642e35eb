use sankalpa_proto::v1 as pb;
use tonic::Code;

use crate::{authed, register_and_login, start};

#[sqlx::test(migrations = false)]
async fn a_wrong_password_and_an_unknown_email_fail_alike(pool: sqlx::PgPool) {
    let mut auth = start(pool).await;
    register_and_login(&mut auth.client, "ada@example.com").await;
    let wrong_password = auth
        .client
        .login(pb::LoginRequest {
            email: "ada@example.com".into(),
            password: "not the password".into(),
        })
        .await
        .unwrap_err();
    let unknown_email = auth
        .client
        .login(pb::LoginRequest {
            email: "nobody@example.com".into(),
            password: "correct horse battery".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong_password.code(), Code::Unauthenticated);
    assert_eq!(unknown_email.code(), Code::Unauthenticated);
    assert_eq!(wrong_password.message(), unknown_email.message());

    // Found by schemathesis: an "email" Postgres cannot hold was an internal error.
    let not_an_address = auth
        .client
        .login(pb::LoginRequest {
            email: "ada\u{0}@example.com\u{6}".into(),
            password: "correct horse battery".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(not_an_address.code(), Code::Unauthenticated);
    assert_eq!(not_an_address.message(), wrong_password.message());
}

#[sqlx::test(migrations = false)]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family(pool: sqlx::PgPool) {
    let mut auth = start(pool).await;
    let first = register_and_login(&mut auth.client, "ada@example.com").await;
    let second = auth
        .client
        .refresh(pb::RefreshRequest {
            refresh_token: first.refresh_token.clone(),
        })
        .await
        .expect("a fresh token rotates")
        .into_inner();
    assert_ne!(second.refresh_token, first.refresh_token);

    let reuse = auth
        .client
        .refresh(pb::RefreshRequest {
            refresh_token: first.refresh_token,
        })
        .await
        .unwrap_err();
    assert_eq!(reuse.code(), Code::Unauthenticated);

    // The legitimate holder's newer token died with the family, and so did the access tokens
    // issued in it.
    let after = auth
        .client
        .refresh(pb::RefreshRequest {
            refresh_token: second.refresh_token,
        })
        .await
        .unwrap_err();
    assert_eq!(after.code(), Code::Unauthenticated);
    let audit = || pb::ListAuditEventsRequest { page: None };
    let refused = auth
        .client
        .list_audit_events(authed(audit(), &second.access_token))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    let again = auth
        .client
        .login(pb::LoginRequest {
            email: "ada@example.com".into(),
            password: "correct horse battery".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let events = auth
        .client
        .list_audit_events(authed(audit(), &again.access_token))
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(events.iter().any(|event| event.action == "refresh.reused"));
}

#[sqlx::test(migrations = false)]
async fn logout_ends_the_session(pool: sqlx::PgPool) {
    let mut auth = start(pool).await;
    let pair = register_and_login(&mut auth.client, "ada@example.com").await;
    auth.client
        .logout(pb::LogoutRequest {
            refresh_token: pair.refresh_token.clone(),
            everywhere: false,
        })
        .await
        .unwrap();
    let refreshed = auth
        .client
        .refresh(pb::RefreshRequest {
            refresh_token: pair.refresh_token,
        })
        .await
        .unwrap_err();
    assert_eq!(refreshed.code(), Code::Unauthenticated);
}
