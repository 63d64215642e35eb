use sankalpa_proto::v1 as pb;
use tonic::Code;

use crate::{authed, start};

#[sqlx::test(migrations = false)]
async fn sessions_are_listed_newest_first_page_by_page(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    for session in ["first", "second", "third"] {
        app.save(&ada, session, "k", "1").await.unwrap();
        app.save(&ada, session, "j", "1").await.unwrap();
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .client
            .list_sessions(authed(
                pb::ListSessionsRequest {
                    page: Some(pb::PageRequest {
                        page_size: 2,
                        page_token: token,
                    }),
                    ..Default::default()
                },
                &ada.token,
            ))
            .await
            .unwrap()
            .into_inner();
        for session in page.sessions {
            assert_eq!(session.entry_count, 2);
            assert_eq!(session.tenant_id, ada.tenant_id);
            assert!(!session.user_id.is_empty());
            seen.push(session.id);
        }
        token = page.page.unwrap().next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, ["third", "second", "first"]);
}

#[sqlx::test(migrations = false)]
async fn sessions_are_listed_by_the_prefix_of_their_id(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    // `_` would be a wildcard of LIKE: the prefix is matched as text.
    for session in ["chat-1", "chat-2", "chat_3", "notes"] {
        app.save(&ada, session, "k", "1").await.unwrap();
    }
    let listed = |prefix: &str| {
        authed(
            pb::ListSessionsRequest {
                id_prefix: prefix.into(),
                ..Default::default()
            },
            &ada.token,
        )
    };
    let page = app
        .client
        .list_sessions(listed("chat-"))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = page.sessions.into_iter().map(|s| s.id).collect();
    assert_eq!(ids, ["chat-2", "chat-1"]);
    let status = app
        .client
        .list_sessions(listed(&"x".repeat(257)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[sqlx::test(migrations = false)]
async fn deleting_a_session_removes_its_entries(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "a", "1").await.unwrap();
    app.save(&ada, "s1", "b", "1").await.unwrap();
    app.load(&ada, "s1", "a").await.unwrap();
    let delete = || {
        authed(
            pb::DeleteSessionRequest {
                session_id: "s1".into(),
            },
            &ada.token,
        )
    };
    let deleted = app
        .client
        .delete_session(delete())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.deleted_entries, 2);
    assert_eq!(
        app.load(&ada, "s1", "a").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        app.contents(&ada, "s1").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        app.client
            .delete_session(delete())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
}
