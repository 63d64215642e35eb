//! Tokens ended before their expiry: by a logout (that session's), by deleting a user or
//! changing their roles (every token they hold), by revoking a key (the tokens minted from it).
//! Auth refuses them itself at once, and pushes each revocation on NATS for every other
//! verifier.

use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use sankalpa_proto::v1 as pb;
use tonic::Code;

use crate::{authed, member, register_and_login, start};

fn me() -> pb::MeRequest {
    pb::MeRequest {}
}

#[sqlx::test(migrations = false)]
async fn a_logout_ends_the_access_tokens_of_that_session_only(pool: sqlx::PgPool) {
    let mut auth = start(pool).await;
    let first = register_and_login(&mut auth.client, "ada@example.com").await;
    let second = auth
        .client
        .login(pb::LoginRequest {
            email: "ada@example.com".into(),
            password: "correct horse battery".into(),
        })
        .await
        .unwrap()
        .into_inner();
    auth.client
        .logout(pb::LogoutRequest {
            refresh_token: first.refresh_token,
            everywhere: false,
        })
        .await
        .unwrap();
    let ended = auth
        .client
        .me(authed(me(), &first.access_token))
        .await
        .unwrap_err();
    assert_eq!(ended.code(), Code::Unauthenticated);
    assert!(ended.message().contains("revoked"), "{ended:?}");
    auth.client
        .me(authed(me(), &second.access_token))
        .await
        .expect("the other session goes on");
}

#[sqlx::test(migrations = false)]
async fn deleting_a_user_ends_their_tokens_and_tells_every_verifier(pool: sqlx::PgPool) {
    let mut auth = start(pool).await;
    let admin = register_and_login(&mut auth.client, "ada@example.com").await;
    let bob = member(&mut auth.client, &admin, "bob@example.com", &["developer"]).await;
    let bob_id = bob.user.as_ref().unwrap().id.clone();
    auth.client
        .me(authed(me(), &bob.access_token))
        .await
        .unwrap();

    let infra = &auth.infra;
    let nats = async_nats::connect(&infra.nats_url).await.unwrap();
    let mut pushed = nats
        .subscribe(sankalpa_kit::auth::revocations_subject(
            &infra.subject_prefix,
        ))
        .await
        .unwrap();
    nats.flush().await.unwrap();

    auth.client
        .delete_user(authed(
            pb::DeleteUserRequest { id: bob_id.clone() },
            &admin.access_token,
        ))
        .await
        .unwrap();
    let refused = auth
        .client
        .me(authed(me(), &bob.access_token))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    let message = tokio::time::timeout(Duration::from_secs(2), pushed.next())
        .await
        .expect("the revocation is pushed at once")
        .unwrap();
    let revocation = pb::Revocation::decode(message.payload).unwrap();
    assert_eq!(revocation.subject, bob_id);
    assert!(revocation.expires_at_ms > chrono::Utc::now().timestamp_millis());

    // A verifier that starts now learns it from the list.
    let listed = auth
        .client
        .list_revocations(pb::ListRevocationsRequest {})
        .await
        .unwrap()
        .into_inner()
        .revocations;
    assert!(listed.iter().any(|listed| listed.subject == bob_id));
}

#[sqlx::test(migrations = false)]
async fn a_token_issued_after_a_revocation_is_not_refused(pool: sqlx::PgPool) {
    let mut auth = start(pool).await;
    let admin = register_and_login(&mut auth.client, "ada@example.com").await;
    let bob = member(&mut auth.client, &admin, "bob@example.com", &["viewer"]).await;
    auth.client
        .set_user_roles(authed(
            pb::SetUserRolesRequest {
                id: bob.user.as_ref().unwrap().id.clone(),
                roles: vec!["developer".into()],
            },
            &admin.access_token,
        ))
        .await
        .unwrap();
    // Within the same second as the revocation: told apart by the millisecond.
    let renewed = auth
        .client
        .refresh(pb::RefreshRequest {
            refresh_token: bob.refresh_token,
        })
        .await
        .unwrap()
        .into_inner();
    let user = auth
        .client
        .me(authed(me(), &renewed.access_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(user.roles, ["developer"]);
}
