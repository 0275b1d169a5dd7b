//! Warm standbys announce themselves (`meta`, `_id: "standby"`: the last
//! moment any warm standby was seen, by its own clock), so that a holder
//! whose lease has lapsed knows whether someone may be answering in its
//! place (ARCHITECTURE.md, "The lease").

use mongodb::bson::{doc, DateTime};

use super::schema::META;
use super::{Store, StoreError};
use crate::core::Millis;

const STANDBY: &str = "standby";

impl Store {
    /// A warm standby (`instance`) is here at `now`.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn note_warm_standby(&self, instance: &str, now: Millis) -> Result<(), StoreError> {
        self.command(doc! {
            "update": META,
            "updates": [{
                "q": { "_id": STANDBY },
                "u": {
                    "$max": { "at": DateTime::from_millis(now) },
                    "$set": { "instance": instance },
                },
                "upsert": true,
            }],
        })
        .await
        .map(|_| ())
    }

    /// When a warm standby was last seen (its clock), if ever.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn warm_standby_at(&self) -> Result<Option<Millis>, StoreError> {
        let found = tokio::time::timeout(
            self.command_timeout,
            self.decisive(META).find_one(doc! { "_id": STANDBY }),
        )
        .await
        .map_err(|_| StoreError::Transient("reading the standby note: no reply".into()))??;
        Ok(found.and_then(|d| d.get_datetime("at").ok().map(|t| t.timestamp_millis())))
    }
}
