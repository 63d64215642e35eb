//! Reviews: one per user per item (a second review by the same user replaces the first), a
//! rating of 1 to 5 and a comment. The item's rating aggregate is recomputed from its reviews
//! in the same transaction as the write, under the item's row lock, so concurrent reviews
//! apply one after another and the aggregate is always exactly that of the stored reviews.
//! A tenant cannot review its own items.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::State;
use crate::error::{MarketError, Result};
use crate::events::Action;
use crate::items::{self, Item};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Review {
    pub id: Uuid,
    pub item_id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: String,
    pub author_name: String,
    pub rating: i16,
    pub comment: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! review_columns {
    () => {
        "id, item_id, tenant_id, user_id, author_name, rating, comment, created_at, updated_at"
    };
}

pub struct Reviewer {
    pub tenant: Uuid,
    /// The user (or API key) reviewing.
    pub user: String,
    pub name: String,
}

pub async fn review(
    state: &State,
    item: &Item,
    reviewer: &Reviewer,
    rating: i16,
    comment: &str,
) -> Result<Review> {
    if item.publisher_tenant_id == reviewer.tenant {
        return Err(MarketError::Precondition(
            "a tenant cannot review its own item".to_owned(),
        ));
    }
    let mut tx = state.pool.begin().await?;
    items::lock(&mut tx, item.id).await?;
    let review: Review = sqlx::query_as(concat!(
        "INSERT INTO marketplace.reviews (id, item_id, tenant_id, user_id, author_name, rating, \
         comment) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (item_id, user_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, \
         author_name = EXCLUDED.author_name, rating = EXCLUDED.rating, \
         comment = EXCLUDED.comment, updated_at = now() \
         RETURNING ",
        review_columns!()
    ))
    .bind(Uuid::now_v7())
    .bind(item.id)
    .bind(reviewer.tenant)
    .bind(&reviewer.user)
    .bind(&reviewer.name)
    .bind(rating)
    .bind(comment)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE marketplace.items SET \
         rating_sum = (SELECT COALESCE(sum(rating), 0) FROM marketplace.reviews WHERE item_id = $1), \
         rating_count = (SELECT count(*) FROM marketplace.reviews WHERE item_id = $1) \
         WHERE id = $1",
    )
    .bind(item.id)
    .execute(&mut *tx)
    .await?;
    state
        .events
        .enqueue(
            &mut tx,
            reviewer.tenant,
            &item.id.to_string(),
            Action::Reviewed,
            serde_json::json!({
                "item_id": item.id,
                "review_id": review.id,
                "rating": review.rating,
                "user_id": review.user_id,
            }),
        )
        .await?;
    tx.commit().await?;
    state.events.wake();
    Ok(review)
}

/// The item's reviews, newest (last written) first.
pub async fn list(pool: &PgPool, item: Uuid, size: i64, offset: i64) -> Result<Vec<Review>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        review_columns!(),
        " FROM marketplace.reviews WHERE item_id = $1 \
         ORDER BY updated_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(item)
    .bind(size)
    .bind(offset)
    .fetch_all(pool)
    .await?)
}
