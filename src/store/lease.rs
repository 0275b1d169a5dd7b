//! The lease in `meta` (`_id: "lease"`, one per database, so one per
//! deployment): which instance counts, its epoch (the fencing number, raised
//! by every takeover), its expiry (renewed by heartbeat) and the handoff point
//! the last graceful holder left (ARCHITECTURE.md, "The lease").

use mongodb::bson::{doc, DateTime, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ReturnDocument, WriteConcern};

use super::schema::{int, to_i64, DUPLICATE_KEY, META};
use super::{Store, StoreError};
use crate::core::Millis;

mod pending;

const LEASE: &str = "lease";
/// The message ids the last graceful holder counted near its handoff.
const HANDOFF_IDS: &str = "handoff-ids";

/// Every lease command is acknowledged by a majority, whatever
/// `MONGODB_WRITE_CONCERN` says for the data: a lease taken or renewed on a
/// primary and rolled back by a failover would give two holders one epoch.
static LEASE_WRITE_CONCERN: std::sync::LazyLock<Document> =
    std::sync::LazyLock::new(|| doc! { "w": "majority" });

/// Where a graceful holder stopped counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handoff {
    /// Above every message id the previous holder counted (and at least
    /// the snowflake of its handoff moment): what a taker that cannot read
    /// [`HandoffIds`] (or a version without them) counts from, losing
    /// rather than doubling.
    pub snowflake: u64,
    /// The moment its open sessions were credited up to.
    pub at: Millis,
    /// The last sequence number it issued.
    pub seq: u64,
}

/// The messages a graceful holder accounted for, by id: every id below
/// `floor`, and `ids` (the ones at or above it that it counted, or that the
/// holder before it had). The next holder counts exactly the others.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandoffIds {
    pub floor: u64,
    pub ids: Vec<u64>,
}

/// Who asks for the lease: its spool directory, which is what proves a
/// lease is its own (never the hostname, which a Docker recreate or a pod
/// rescheduled onto its volume changes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimant<'a> {
    /// For people reading the lease (`HOSTNAME:instance-id`), and what
    /// renewals and the release match on (one process).
    pub name: &'a str,
    /// The spool directory's id (`SPOOL_DIR/instance-id`).
    pub instance: &'a str,
    /// The last epoch this spool directory held (`SPOOL_DIR/lease-epoch`).
    pub held_epoch: Option<u64>,
}

/// What the lease looked like when this instance took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    pub epoch: u64,
    /// The previous holder's epoch (0: none), whose [`HandoffIds`] a
    /// takeover after a handoff reads.
    pub prev_epoch: u64,
    /// The previous holder's handoff (it released the lease).
    pub handoff: Option<Handoff>,
    /// When the previous holder's lease expired, if it did not release it
    /// (`None`: there was no previous holder).
    pub expired_at: Option<Millis>,
    /// The previous holder was this spool directory (its instance id, at
    /// the last epoch it held, whatever the hostname): a process restarted
    /// after a crash takes its lease back at once, and what its spool holds
    /// was counted by nobody else.
    pub reclaimed: bool,
}

impl Store {
    /// The server's clock (`hello`'s `localTime`, which MongoDB and
    /// FerretDB give), what the lease's expiry is set and compared in
    /// (F18): then only the server's clock and each instance's own
    /// monotonic clock matter, never how far two instances' wall clocks
    /// are apart. `None`: the server does not say.
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn server_time(&self) -> Result<Option<Millis>, StoreError> {
        let reply = self.command(doc! { "hello": 1 }).await?;
        Ok(reply
            .get_datetime("localTime")
            .ok()
            .map(|t| t.timestamp_millis()))
    }

    /// Takes the lease for `me` for `ttl_ms` if it is free (expired,
    /// released or absent) or already its spool directory's (a restart on
    /// the same spool, under any hostname). `None`: another instance holds
    /// it.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn acquire_lease(
        &self,
        me: &Claimant<'_>,
        now: Millis,
        ttl_ms: i64,
    ) -> Result<Option<Taken>, StoreError> {
        // Read, then compare-and-set on what was read (the epoch and the
        // rule that made it free): the update records where the previous
        // holder stopped (`prev`), computed from what was read, so that a
        // retry after a lost reply still finds it (see `previous`). No
        // upsert and no duplicate key are relied on: not every server
        // reports one from `findAndModify` as 11000 (FerretDB v2 says
        // `InternalError`), so a missing document is created free first.
        for _ in 0..2 {
            let read = tokio::time::timeout(
                self.command_timeout,
                self.decisive(META).find_one(doc! { "_id": LEASE }),
            )
            .await
            .map_err(|_| StoreError::Transient("reading the lease: no reply".into()))??;
            let Some(before) = read else {
                // Created here or by someone else meanwhile: read it again.
                self.create_free_lease().await?;
                continue;
            };
            let expired = before
                .get_datetime("expires_at")
                .is_ok_and(|t| t.timestamp_millis() < now);
            let released = before.get_bool("released").unwrap_or(false);
            if !(expired || released || instance_of(&before) == me.instance) {
                return Ok(None);
            }
            let prev = previous(&before, me);
            let epoch = int(&before, "epoch");
            let next = next_epoch(epoch, now, me.held_epoch);
            let filter = doc! {
                "_id": LEASE,
                "epoch": epoch,
                "$or": [
                    { "expires_at": { "$lt": DateTime::from_millis(now) } },
                    { "released": true },
                    { "instance": me.instance },
                    // Taken by a version that named its holder `HOSTNAME:id` only.
                    { "instance": { "$exists": false }, "holder": { "$regex": format!(":{}$", me.instance) } },
                ],
            };
            let update = doc! {
                "$set": {
                    "epoch": next,
                    "holder": me.name,
                    "instance": me.instance,
                    "expires_at": DateTime::from_millis(now + ttl_ms),
                    "released": false,
                    "handoff": null,
                    "handoff_pending": null,
                    "prev": prev.clone(),
                },
            };
            let found = tokio::time::timeout(
                self.command_timeout,
                self.decisive(META)
                    .find_one_and_update(filter, update)
                    .write_concern(WriteConcern::majority())
                    .return_document(ReturnDocument::Before),
            )
            .await
            .map_err(|_| StoreError::Transient("taking the lease: no reply".into()))?;
            return match found {
                Ok(Some(_)) => Ok(Some(taken_from(&prev, next, me))),
                // Changed since it was read (renewed, or taken by another).
                Ok(None) => Ok(None),
                Err(e) if is_duplicate(&e) => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        Ok(None)
    }

    /// Creates the lease document, free, unless it exists. `true`: it did
    /// not exist before (an upsert on `_id` alone never meets a duplicate).
    async fn create_free_lease(&self) -> Result<bool, StoreError> {
        let reply = self
            .command(doc! {
                "update": META,
                "updates": [{
                    "q": { "_id": LEASE },
                    "u": { "$setOnInsert": { "epoch": 0_i64, "released": true, "holder": "" } },
                    "upsert": true,
                }],
                "writeConcern": LEASE_WRITE_CONCERN.clone(),
            })
            .await?;
        Ok(reply.get_array("upserted").is_ok_and(|u| !u.is_empty()))
    }

    /// Extends the lease `holder` holds at `epoch` to `now + ttl_ms`.
    /// `false`: the lease is no longer this holder's.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn renew_lease(
        &self,
        holder: &str,
        epoch: u64,
        now: Millis,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let reply = self
            .command(doc! {
                "update": META,
                "updates": [{
                    "q": { "_id": LEASE, "holder": holder, "epoch": to_i64(epoch), "released": false },
                    // `$max`: a renewal applied late never moves the expiry back.
                    "u": { "$max": { "expires_at": DateTime::from_millis(now + ttl_ms) } },
                }],
                "writeConcern": LEASE_WRITE_CONCERN.clone(),
            })
            .await?;
        Ok(int(&reply, "n") > 0)
    }

    /// Releases the lease `holder` holds at `epoch`, recording `handoff`
    /// and the message ids it accounted for (`ids`, in their own document,
    /// so the lease document standbys read every 250 ms stays small).
    /// `false`: it was no longer this holder's.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn release_lease(
        &self,
        holder: &str,
        epoch: u64,
        handoff: Handoff,
        ids: &HandoffIds,
    ) -> Result<bool, StoreError> {
        // The ids first: a release is never seen without them.
        self.write_handoff_ids(epoch, ids).await?;
        self.set_on_held_lease(
            holder,
            epoch,
            doc! { "released": true, "handoff": pending::handoff_doc(handoff) },
        )
        .await
    }

    /// The message ids the holder at `epoch` handed over with its release;
    /// `None`: it left none (a version without them, or another holder's).
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn handoff_ids(&self, epoch: u64) -> Result<Option<HandoffIds>, StoreError> {
        let found = tokio::time::timeout(
            self.command_timeout,
            self.decisive(META)
                .find_one(doc! { "_id": HANDOFF_IDS, "epoch": to_i64(epoch) }),
        )
        .await
        .map_err(|_| StoreError::Transient("reading the handoff ids: no reply".into()))??;
        Ok(found.map(|d| HandoffIds {
            floor: u64::try_from(int(&d, "floor")).unwrap_or(0),
            ids: d
                .get_array("ids")
                .map(|a| {
                    a.iter()
                        .filter_map(mongodb::bson::Bson::as_i64)
                        .filter_map(|id| u64::try_from(id).ok())
                        .collect()
                })
                .unwrap_or_default(),
        }))
    }
}

impl Taken {
    /// When the previous holder stopped counting: its handoff moment (the
    /// handoff snowflake is that moment's), or its lease's expiry.
    #[must_use]
    pub fn previous_stop(&self) -> Option<Millis> {
        self.handoff.map(|h| h.at).or(self.expired_at)
    }
}

/// The lease as stored, for `check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: String,
    pub epoch: u64,
    pub expires_at: Millis,
    pub released: bool,
}

impl Store {
    /// The lease document, if any instance ever took it.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn read_lease(&self) -> Result<Option<LeaseRecord>, StoreError> {
        let found = self.decisive(META).find_one(doc! { "_id": LEASE }).await?;
        // Epoch 0 is the free document `acquire_lease` creates before the
        // first take.
        Ok(found.filter(|d| int(d, "epoch") > 0).map(|d| LeaseRecord {
            holder: d.get_str("holder").unwrap_or_default().to_owned(),
            epoch: u64::try_from(int(&d, "epoch")).unwrap_or(0),
            expires_at: d
                .get_datetime("expires_at")
                .map_or(0, |t| t.timestamp_millis()),
            released: d.get_bool("released").unwrap_or(false),
        }))
    }
}

/// The spool directory that held the lease `d` describes: its `instance`,
/// or, for a lease taken by an older version, what follows the last `:` of
/// `holder`.
fn instance_of(d: &Document) -> &str {
    d.get_str("instance").unwrap_or_else(|_| {
        let holder = d.get_str("holder").unwrap_or_default();
        holder.rsplit_once(':').map_or(holder, |(_, id)| id)
    })
}

/// Where the holder before this acquire stopped, as the lease document
/// `before` (read just before it) shows: `before` itself, unless `before`
/// is this spool directory's own lease at an epoch it never recorded (an
/// acquire of ours whose reply was lost, or a crash before the epoch was
/// recorded): then nobody counted under it, and the holder before it is
/// the one kept in `before.prev`.
fn previous(before: &Document, me: &Claimant<'_>) -> Document {
    let unseen = instance_of(before) == me.instance
        && me.held_epoch != Some(epoch_of(before))
        && before.get_document("prev").is_ok();
    match before.get_document("prev") {
        Ok(prev) if unseen => prev.clone(),
        _ => {
            let mut stop = doc! {
                "holder": before.get_str("holder").unwrap_or_default(),
                "instance": instance_of(before),
                "epoch": int(before, "epoch"),
                "released": before.get_bool("released").unwrap_or(false),
            };
            if let Ok(t) = before.get_datetime("expires_at") {
                stop.insert("expires_at", *t);
            }
            for key in ["handoff", "handoff_pending"] {
                if let Ok(h) = before.get_document(key) {
                    stop.insert(key, h.clone());
                }
            }
            stop
        }
    }
}

/// The epoch a takeover gets: above the lease document's (`epoch`), and
/// never below the wall clock in milliseconds nor above what this spool
/// directory last held, so that epochs keep rising when the document is
/// deleted or restored from an older backup (documents written at a higher
/// epoch would refuse every write, as fenced). The clock part holds as long
/// as no acquirer's clock is behind the moment of an earlier takeover.
fn next_epoch(epoch: i64, now: Millis, held: Option<u64>) -> i64 {
    let held = held.map_or(0, |e| i64::try_from(e).unwrap_or(i64::MAX));
    epoch.saturating_add(1).max(now).max(held.saturating_add(1))
}

fn epoch_of(d: &Document) -> u64 {
    u64::try_from(int(d, "epoch")).unwrap_or(0)
}

/// The lease taken at `epoch` after the holder `prev` (see `previous`).
fn taken_from(prev: &Document, epoch: i64, me: &Claimant<'_>) -> Taken {
    let released = prev.get_bool("released").unwrap_or(false);
    // Released: its handoff. Expired: the handoff it recorded before its
    // drain, if it got that far (`pending`), as if it had released.
    let handoff = prev
        .get_document(if released {
            "handoff"
        } else {
            "handoff_pending"
        })
        .ok()
        .map(pending::handoff_of);
    let expired_at = prev
        .get_datetime("expires_at")
        .ok()
        .map(|t| t.timestamp_millis());
    Taken {
        epoch: u64::try_from(epoch).unwrap_or(0),
        prev_epoch: epoch_of(prev),
        handoff,
        expired_at: if handoff.is_some() { None } else { expired_at },
        // Its own lease if this spool directory held it at that epoch (a
        // spool that never recorded one is from before the record).
        reclaimed: !me.instance.is_empty()
            && instance_of(prev) == me.instance
            && me.held_epoch.is_none_or(|e| e == epoch_of(prev)),
    }
}

fn is_duplicate(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        _ => e.to_string().contains("E11000"),
    }
}
