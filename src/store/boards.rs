//! The snapshots the rankings are read from ([`Board`]): one `find` of a
//! server's `member_stats` at a period's key (`{<period>.key: key}`, the
//! member's current periods: `store/periods.rs`; all time: the totals),
//! ranked in memory, so a page, the count and every rank on it come from
//! one read (issue 15, F6).
//!
//! In a server with fewer than [`BoardPolicy::min_members`] members in the
//! period, every ranking is a fresh read: a few milliseconds, and exactly
//! what MongoDB holds. In a larger one the read costs the period's size
//! (about a second at 100,000 members on the test server, whose sort would
//! cost as much for every page: BENCHMARKS.md), so the bot keeps the
//! snapshot and answers from it while it is at most
//! [`BoardPolicy::max_age`] old; one older than half of that is re-read in
//! the background while it keeps answering, and readers who find none (or
//! one too old) wait for the one read in flight (the first read after a
//! start or a forget is shared the same way, whatever the size). A ranking there can be up
//! to `max_age` behind MongoDB, never inconsistent with itself. Erasures
//! and corrections made by this process forget the server's snapshots at
//! once. Without a policy (the CLI) every read is fresh.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt as _, TryStreamExt as _};
use mongodb::bson::{doc, Document};

use super::schema::{from_i64, int, MEMBER_STATS};
use super::{Store, StoreError};
use crate::core::leaderboard::{Board, Period};
use crate::core::stats::Totals;

/// When a ranking may be answered from a kept snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoardPolicy {
    /// The oldest snapshot a ranking is answered from (0: never kept).
    pub max_age: Duration,
    /// Periods with fewer members than this are read fresh every time.
    pub min_members: usize,
}

enum Next {
    Kept(Arc<Board>),
    Wait(Building),
    Fresh,
}

/// A server, a period and its key (`None`: all time).
type BoardId = (u64, Period, Option<String>);

type Building = Shared<BoxFuture<'static, Result<Arc<Board>, String>>>;

#[derive(Default)]
struct Slot {
    board: Option<(Arc<Board>, Instant)>,
    /// The read in flight, and its number.
    building: Option<(u64, Building)>,
    last_read: Option<Instant>,
}

/// The kept snapshots, by server, period and period key (shared by clones).
#[derive(Default)]
pub(super) struct Boards {
    policy: Mutex<Option<BoardPolicy>>,
    /// Raised by every forget: a fresh read that began before one is not kept.
    forgets: AtomicU64,
    /// Numbers the shared reads.
    reads: AtomicU64,
    slots: Mutex<HashMap<BoardId, Slot>>,
}

impl std::fmt::Debug for Boards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Boards").finish_non_exhaustive()
    }
}

/// Slots not read for this long are dropped when another is added.
const IDLE: Duration = Duration::from_secs(600);

/// The field of `member_stats` holding a period (all time: the totals
/// themselves; `store/periods.rs`).
fn field(period: Period) -> Option<&'static str> {
    match period {
        Period::Today => Some("day"),
        Period::Week => Some("week"),
        Period::Month => Some("month"),
        Period::All => None,
    }
}

fn totals(d: &Document) -> Totals {
    Totals {
        cam_on_secs: int(d, "voice_cam_on_secs"),
        cam_off_secs: int(d, "voice_cam_off_secs"),
        messages: int(d, "messages"),
    }
}

impl Store {
    /// Lets rankings be answered from kept snapshots (the bot; see the
    /// module). `max_age` 0 keeps none.
    pub fn keep_boards(&self, policy: BoardPolicy) {
        *self
            .boards
            .policy
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            (!policy.max_age.is_zero()).then_some(policy);
    }

    /// Forgets `guild`'s kept snapshots (after an erasure or a correction).
    pub fn forget_boards(&self, guild: u64) {
        let mut slots = self
            .boards
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.boards.forgets.fetch_add(1, Ordering::SeqCst);
        slots.retain(|(g, _, _), _| *g != guild);
    }

    /// The ranking snapshot of `guild`'s `period` named by `key`: kept, or
    /// read now (see the module for which).
    ///
    /// # Errors
    /// The server is unreachable.
    pub(super) async fn board(
        &self,
        guild: u64,
        period: Period,
        key: Option<&str>,
    ) -> Result<Arc<Board>, StoreError> {
        let policy = *self
            .boards
            .policy
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(policy) = policy else {
            return self.read_board(guild, period, key).await.map(Arc::new);
        };
        let id = (guild, period, key.map(str::to_owned));
        let next = {
            let mut slots = self
                .boards
                .slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !slots.contains_key(&id) {
                slots.retain(|_, s| s.last_read.is_some_and(|t| t.elapsed() < IDLE));
            }
            let slot = slots.entry(id.clone()).or_default();
            slot.last_read = Some(Instant::now());
            match slot.board.clone() {
                Some((board, read)) if board.len() >= policy.min_members => {
                    let age = read.elapsed();
                    if age <= policy.max_age {
                        if age > policy.max_age / 2 {
                            // Runs on its own task; nobody waits for it.
                            drop(self.reading(slot, &id));
                        }
                        Next::Kept(board)
                    } else {
                        Next::Wait(self.reading(slot, &id))
                    }
                }
                // Not read yet (after a start, or forgotten): one read for
                // every reader, so that many first readers in a large
                // server do not each read it whole.
                None => Next::Wait(self.reading(slot, &id)),
                // Small: fresh and unshared, so that it holds everything
                // applied before this call.
                Some(_) => match &slot.building {
                    Some((_, building)) => Next::Wait(building.clone()),
                    None => Next::Fresh,
                },
            }
        };
        match next {
            Next::Kept(board) => Ok(board),
            Next::Wait(building) => building.await.map_err(StoreError::Transient),
            Next::Fresh => {
                let started = Instant::now();
                let forgets = self.boards.forgets.load(Ordering::SeqCst);
                let board = Arc::new(self.read_board(guild, period, key).await?);
                self.keep_board(id, &board, started, forgets);
                Ok(board)
            }
        }
    }

    /// The read of `slot` (`id`'s) in flight, started if there is none.
    fn reading(&self, slot: &mut Slot, id: &BoardId) -> Building {
        if let Some((_, building)) = &slot.building {
            return building.clone();
        }
        let n = self.boards.reads.fetch_add(1, Ordering::SeqCst);
        let building = self.start_board_read(id.clone(), n);
        slot.building = Some((n, building.clone()));
        building
    }

    /// Reads `id`'s snapshot on a task of its own (a reader that gives up
    /// does not cancel it), kept when it lands if its slot still waits for
    /// read `n` (not forgotten meanwhile).
    fn start_board_read(&self, id: BoardId, n: u64) -> Building {
        let store = self.clone();
        let task = tokio::spawn(async move {
            let (g, p, k) = id.clone();
            let started = Instant::now();
            let read = store.read_board(g, p, k.as_deref()).await.map(Arc::new);
            let mut slots = store
                .boards
                .slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = slots.get_mut(&id) {
                if slot.building.as_ref().is_some_and(|(m, _)| *m == n) {
                    slot.building = None;
                    if let Ok(board) = &read {
                        slot.board = Some((board.clone(), started));
                    }
                }
            }
            read.map_err(|e| e.to_string())
        });
        async move { task.await.map_err(|e| format!("reading a ranking: {e}"))? }
            .boxed()
            .shared()
    }

    fn keep_board(&self, id: BoardId, board: &Arc<Board>, read: Instant, forgets: u64) {
        let mut slots = self
            .boards
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.boards.forgets.load(Ordering::SeqCst) != forgets {
            return; // read before a forget
        }
        let slot = slots.entry(id).or_default();
        if slot.board.as_ref().is_none_or(|(_, t)| *t < read) {
            slot.board = Some((board.clone(), read));
        }
    }

    /// One read of every member's totals in `guild`'s `period` named by
    /// `key` (`None`: all time).
    async fn read_board(
        &self,
        guild: u64,
        period: Period,
        key: Option<&str>,
    ) -> Result<Board, StoreError> {
        // The server's members by `_id` range (`g:`…, `;` follows `:`): an
        // `_id` index scan of its documents alone, so `member_stats` needs
        // no other index (each costs every write; BENCHMARKS.md).
        let g = guild.to_string();
        let mut filter = doc! { "_id": { "$gte": format!("{g}:"), "$lt": format!("{g};") } };
        let mut projection = doc! { "_id": 0, "user_id": 1 };
        let field = field(period);
        match (field, key) {
            (Some(f), Some(key)) => {
                filter.insert(format!("{f}.key"), key);
                projection.insert(f, 1);
            }
            _ => {
                for m in ["voice_cam_on_secs", "voice_cam_off_secs", "messages"] {
                    projection.insert(m, 1);
                }
            }
        }
        let read_at = chrono::Utc::now().timestamp_millis();
        let rows: Vec<(u64, Totals)> = self
            .db
            .collection::<Document>(MEMBER_STATS)
            .find(filter)
            .projection(projection)
            .hint(mongodb::options::Hint::Keys(doc! { "_id": 1 }))
            .batch_size(10_000)
            .await?
            .map_ok(|d| {
                let t = match field.and_then(|f| d.get_document(f).ok()) {
                    Some(p) => totals(p),
                    None => totals(&d),
                };
                (from_i64(int(&d, "user_id")), t)
            })
            .try_collect()
            .await?;
        Ok(Board::new(period, rows, read_at))
    }
}
