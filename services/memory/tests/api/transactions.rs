use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::transact_op::Op;
use serde_json::json;

use crate::{Caller, TestMemory, authed, start};

fn set(key: &str, value: &str) -> pb::TransactOp {
    pb::TransactOp {
        key: key.into(),
        op: Some(Op::Set(pb::SetOp {
            value_json: value.into(),
            ttl_seconds: 0,
        })),
    }
}

fn delete(key: &str) -> pb::TransactOp {
    pb::TransactOp {
        key: key.into(),
        op: Some(Op::Delete(pb::DeleteOp {})),
    }
}

fn check(key: &str, version: u64) -> pb::TransactOp {
    pb::TransactOp {
        key: key.into(),
        op: Some(Op::CheckVersion(pb::CheckVersionOp { version })),
    }
}

async fn transact(
    app: &mut TestMemory,
    caller: &Caller,
    ops: Vec<pb::TransactOp>,
) -> pb::TransactResponse {
    app.client
        .transact(authed(
            pb::TransactRequest {
                session_id: "s1".into(),
                ops,
            },
            &caller.token,
        ))
        .await
        .unwrap()
        .into_inner()
}

#[sqlx::test(migrations = false)]
async fn a_transaction_sets_and_deletes_together_when_its_checks_hold(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "a", "1").await.unwrap();
    app.save(&ada, "s1", "old", "1").await.unwrap();

    let done = transact(
        &mut app,
        &ada,
        vec![
            check("a", 1),
            check("new", 0),
            set("new", r#"{"n":1}"#),
            set("a", "2"),
            delete("old"),
            delete("never-there"),
        ],
    )
    .await;
    assert!(done.committed);
    let written: Vec<(String, u64)> = done
        .entries
        .iter()
        .map(|entry| (entry.key.clone(), entry.version))
        .collect();
    assert_eq!(written, [("new".to_owned(), 1), ("a".to_owned(), 2)]);
    assert_eq!(done.deleted_keys, ["old"]);
    assert_eq!(
        app.contents(&ada, "s1").await.unwrap(),
        [
            ("a".to_owned(), json!(2)),
            ("new".to_owned(), json!({"n": 1}))
        ]
    );
}

#[sqlx::test(migrations = false)]
async fn a_failing_check_leaves_every_key_untouched_and_names_the_key(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "a", "1").await.unwrap();
    app.save(&ada, "s1", "b", "1").await.unwrap();
    app.save(&ada, "s1", "b", "2").await.unwrap();
    let before = app.contents(&ada, "s1").await.unwrap();

    let refused = transact(
        &mut app,
        &ada,
        vec![
            set("a", "100"),
            delete("b"),
            set("c", "1"),
            check("a", 1),
            check("b", 1),
        ],
    )
    .await;
    assert!(!refused.committed);
    let conflict = refused.conflict.unwrap();
    assert_eq!(conflict.op_index, 4);
    assert_eq!(conflict.key, "b");
    assert_eq!(conflict.expected_version, 1);
    assert_eq!(conflict.current_version, 2);
    assert!(refused.entries.is_empty());

    assert_eq!(app.contents(&ada, "s1").await.unwrap(), before);
    assert_eq!(app.load(&ada, "s1", "a").await.unwrap().version, 1);
}
