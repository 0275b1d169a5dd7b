//! The `meta` collection's sequence high-water mark: the highest sequence
//! number applied, kept so that a new host with an empty spool (an
//! ephemeral disk) starts above it even if its clock is behind.

use mongodb::bson::doc;

use super::schema::{int, seq_bson, META};
use super::{Store, StoreError};

const HIGH_WATER: &str = "seq_high_water";

impl Store {
    /// The saved high-water mark (0 when none was saved yet).
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn seq_high_water(&self) -> Result<u64, StoreError> {
        let found = self
            .decisive(META)
            .find_one(doc! { "_id": HIGH_WATER })
            .await?;
        Ok(found.map_or(0, |d| u64::try_from(int(&d, "seq")).unwrap_or(0)))
    }

    /// Raises the saved high-water mark to `seq` (never lowers it).
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn raise_seq_high_water(&self, seq: u64) -> Result<(), StoreError> {
        self.command(doc! {
            "update": META,
            "updates": [{
                "q": { "_id": HIGH_WATER },
                "u": { "$max": { "seq": seq_bson(seq) } },
                "upsert": true,
            }],
            "writeConcern": { "w": self.write_concern.clone() },
        })
        .await?;
        Ok(())
    }
}
