//! When MongoDB last answered, for `/readyz` ("MongoDB answered recently"):
//! every command the store sends (writes, the start-up preparation, the
//! health ping) records its outcome here.

use std::sync::atomic::{AtomicI64, Ordering};

use mongodb::bson::doc;

use super::{Store, StoreError};
use crate::core::Millis;

/// The last successful and the last failed command (Unix ms; 0: never).
#[derive(Debug, Default)]
pub(super) struct ContactLog {
    answer: AtomicI64,
    failure: AtomicI64,
}

impl ContactLog {
    pub(super) fn record<T>(&self, result: &Result<T, StoreError>) {
        let now = chrono::Utc::now().timestamp_millis();
        let slot = if result.is_ok() {
            &self.answer
        } else {
            &self.failure
        };
        slot.fetch_max(now, Ordering::Relaxed);
    }
}

/// When MongoDB last answered a command, and when one last failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Contact {
    pub last_answer: Option<Millis>,
    pub last_failure: Option<Millis>,
}

impl Store {
    /// When MongoDB last answered (a command succeeded) and last failed.
    #[must_use]
    pub fn contact(&self) -> Contact {
        let at = |a: &AtomicI64| Some(a.load(Ordering::Relaxed)).filter(|t| *t > 0);
        Contact {
            last_answer: at(&self.contact.answer),
            last_failure: at(&self.contact.failure),
        }
    }

    /// Asks the server for a `ping` (recorded in [`Store::contact`] like
    /// every command).
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.command(doc! { "ping": 1 }).await.map(|_| ())
    }
}
