//! Pages of `GetAll` are bounded by bytes as well as by count: a page of large values ends
//! early with a token to go on, so no answer outgrows what a gRPC client accepts (4 MiB).

use prost::Message;
use sankalpa_memory::DEFAULT_MAX_PAGE_BYTES;
use sankalpa_proto::v1 as pb;
use tonic::Code;

use crate::{authed, start, start_with, violated_field};

/// A JSON string of exactly `bytes` bytes, marked with `mark`.
fn text_value(mark: char, bytes: usize) -> String {
    format!("\"{}\"", mark.to_string().repeat(bytes - 2))
}

#[sqlx::test(migrations = false)]
async fn pages_of_large_values_stop_at_the_byte_budget_and_hold_every_entry_once(
    pool: sqlx::PgPool,
) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let mebibyte = 1024 * 1024;
    let keys: Vec<String> = (0..20).map(|n| format!("k{n:02}")).collect();
    for (n, key) in keys.iter().enumerate() {
        let mark = char::from(b'a' + n as u8);
        app.save(&ada, "big", key, &text_value(mark, mebibyte))
            .await
            .unwrap();
    }

    let pages = app.pages(&ada, "big", 200).await.unwrap();

    let mut seen = Vec::new();
    for page in &pages {
        assert!(!page.entries.is_empty(), "every page makes progress");
        assert!(
            page.encoded_len() <= DEFAULT_MAX_PAGE_BYTES,
            "a page of {} bytes is over the budget",
            page.encoded_len()
        );
        for entry in &page.entries {
            let n = seen.len();
            assert_eq!(entry.value_json.len(), mebibyte, "{}", entry.key);
            assert!(
                entry
                    .value_json
                    .starts_with(&format!("\"{}", char::from(b'a' + n as u8)))
            );
            seen.push(entry.key.clone());
        }
    }
    assert_eq!(seen, keys, "every entry once, in key order");
    assert!(
        pages.len() < keys.len(),
        "pages hold as many values as fit, not one each: {} pages",
        pages.len()
    );
}

#[sqlx::test(migrations = false)]
async fn a_value_larger_than_the_page_budget_comes_through_alone(pool: sqlx::PgPool) {
    let mut app = start_with(pool, |config| config.max_page_bytes = 4096).await;
    let ada = app.sign_up().await;
    for key in ["a", "b", "c"] {
        app.save(&ada, "s1", key, &text_value('x', 3000))
            .await
            .unwrap();
    }
    app.save(&ada, "s1", "d", &text_value('y', 9000))
        .await
        .unwrap();
    for key in ["e", "f"] {
        app.save(&ada, "s1", key, "1").await.unwrap();
    }

    let pages: Vec<Vec<String>> = app
        .pages(&ada, "s1", 200)
        .await
        .unwrap()
        .into_iter()
        .map(|page| page.entries.into_iter().map(|entry| entry.key).collect())
        .collect();

    assert_eq!(
        pages,
        [vec!["a"], vec!["b"], vec!["c"], vec!["d"], vec!["e", "f"]]
    );
}

#[sqlx::test(migrations = false)]
async fn a_key_prefix_or_page_token_that_names_no_key_is_refused(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "k", "1").await.unwrap();
    let get_all = |key_prefix: String, page_token: String| {
        authed(
            pb::GetAllRequest {
                session_id: "s1".into(),
                key_prefix,
                page: Some(pb::PageRequest {
                    page_size: 0,
                    page_token,
                }),
            },
            &ada.token,
        )
    };
    for prefix in ["k".repeat(257), "k\0".into()] {
        let refused = app
            .client
            .get_all(get_all(prefix, String::new()))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(violated_field(&refused), "key_prefix");
    }
    for token in [hex_of("k\0"), hex_of(&"k".repeat(257))] {
        let refused = app
            .client
            .get_all(get_all(String::new(), token))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(violated_field(&refused), "page.page_token");
    }
}

fn hex_of(text: &str) -> String {
    text.bytes().map(|byte| format!("{byte:02x}")).collect()
}
