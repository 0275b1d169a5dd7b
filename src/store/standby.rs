//! Standbys announce themselves (`meta`, `_id: "standby"`: the last moment
//! a warm standby, and a starting one, was seen, by its own clock): a holder
//! whose lease has lapsed knows whether someone may be answering in its
//! place, and a holder handing over waits for a starting one to be warm
//! (ARCHITECTURE.md, "The lease").

use mongodb::bson::{doc, DateTime};

use super::schema::META;
use super::{Store, StoreError};
use crate::core::Millis;

const STANDBY: &str = "standby";

impl Store {
    /// A standby (`instance`) is here at `now`: warm (it could take over),
    /// or starting (not warm yet).
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn note_standby(
        &self,
        instance: &str,
        now: Millis,
        warm: bool,
    ) -> Result<(), StoreError> {
        let field = if warm { "at" } else { "starting_at" };
        self.command(doc! {
            "update": META,
            "updates": [{
                "q": { "_id": STANDBY },
                "u": {
                    "$max": { field: DateTime::from_millis(now) },
                    "$set": { "instance": instance },
                },
                "upsert": true,
            }],
        })
        .await
        .map(|_| ())
    }

    /// When a warm standby, and a starting one, were last seen (their
    /// clocks), if ever.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn standbys_seen(&self) -> Result<(Option<Millis>, Option<Millis>), StoreError> {
        let found = tokio::time::timeout(
            self.command_timeout,
            self.decisive(META).find_one(doc! { "_id": STANDBY }),
        )
        .await
        .map_err(|_| StoreError::Transient("reading the standby note: no reply".into()))??;
        let at = |k| {
            found
                .as_ref()
                .and_then(|d| d.get_datetime(k).ok().map(|t| t.timestamp_millis()))
        };
        Ok((at("at"), at("starting_at")))
    }
}
