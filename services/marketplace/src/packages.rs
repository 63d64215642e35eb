//! Packages in the object store: each version's definition document, under a key of its own,
//! with its SHA-256 kept in the version's row and checked on every read, so a damaged or
//! tampered object is refused rather than installed.
//!
//! Every upload gets a fresh key (`packages/<item>/<upload id>.json`) rather than one derived
//! from the version: two publishes of the same version racing each other then cannot overwrite
//! each other's object, and the loser can delete exactly what it wrote.

use bytes::Bytes;
use sankalpa_kit::objects::Objects;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{MarketError, Result};

pub struct Packages {
    objects: Objects,
}

/// A package in the object store.
pub struct Stored {
    pub key: String,
    pub sha256: String,
    pub size_bytes: i64,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Packages {
    pub fn new(objects: Objects) -> Self {
        Self { objects }
    }

    pub async fn put(&self, item: Uuid, package: &str) -> Result<Stored> {
        let key = format!("packages/{item}/{}.json", Uuid::now_v7());
        let bytes = Bytes::from(package.to_owned());
        let stored = Stored {
            key,
            sha256: sha256_hex(&bytes),
            size_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        };
        self.objects
            .put(&stored.key, bytes)
            .await
            .map_err(MarketError::object_store)?;
        Ok(stored)
    }

    /// Removes a package whose version row was never committed. A failure is only logged: the
    /// object is unreachable without its row, so it wastes space but misleads no one.
    pub async fn discard(&self, key: &str) {
        if let Err(err) = self.objects.delete(key).await {
            tracing::warn!(
                error = format!("{err:#}"),
                key,
                "could not delete an orphan package"
            );
        }
    }

    /// The package at `key`, if its bytes still hash to `sha256`.
    pub async fn get_verified(&self, key: &str, sha256: &str) -> Result<String> {
        let bytes = self
            .objects
            .get(key)
            .await
            .map_err(MarketError::object_store)?
            .ok_or_else(|| MarketError::DataLoss("the stored package is missing".to_owned()))?;
        if sha256_hex(&bytes) != sha256 {
            return Err(MarketError::DataLoss(
                "the stored package does not match its checksum".to_owned(),
            ));
        }
        String::from_utf8(bytes.to_vec())
            .map_err(|_| MarketError::DataLoss("the stored package is not text".to_owned()))
    }
}
