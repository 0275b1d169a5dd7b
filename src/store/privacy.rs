//! Members' privacy: who opted out of tracking in which server
//! (`member_privacy`), and everything stored about a member, for an export.

use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime, Document};

use super::audit::AUDIT_LOG;
use super::schema::{
    from_i64, int, MEMBER_DAYS, MEMBER_MONTHS, MEMBER_STATS, MEMBER_WEEKS, VOICE_SEGMENTS,
    VOICE_SESSIONS,
};
use super::{Store, StoreError};
use crate::core::{MemberKey, Millis};

pub(super) const MEMBER_PRIVACY: &str = "member_privacy";

/// Everything stored about one member of one server, by what it is; each
/// document as MongoDB keeps it.
#[derive(Clone, Debug, Default)]
pub struct MemberDocuments {
    pub totals: Vec<Document>,
    pub days: Vec<Document>,
    pub weeks: Vec<Document>,
    pub months: Vec<Document>,
    pub sessions: Vec<Document>,
    pub open_session: Vec<Document>,
    pub audit: Vec<Document>,
    pub privacy: Vec<Document>,
}

fn to_i64(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

/// Per server, the members who opted out, as this process knows them:
/// left off every ranking. `None` until first read.
#[derive(Debug, Default)]
pub(super) struct Hidden(std::sync::RwLock<Option<std::collections::HashMap<u64, Vec<i64>>>>);

impl Store {
    /// The members of `guild` no ranking shows (they opted out), as
    /// `user_id`s: as last read by [`Store::load_hidden`] or set by
    /// [`Store::hide`] (none before).
    pub(super) fn hidden_in(&self, guild: u64) -> Vec<i64> {
        self.hidden
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .and_then(|all| all.get(&guild).cloned())
            .unwrap_or_default()
    }

    /// Reads who opted out, for the rankings (the bot does at start and at
    /// every reload; the CLI before ranking).
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn load_hidden(&self) -> Result<(), StoreError> {
        let all = self.opted_out_members().await?;
        self.hide(&all);
        Ok(())
    }

    /// Who opted out, everywhere (replaces what this process knew).
    pub fn hide(&self, members: &[MemberKey]) {
        let mut by_guild: std::collections::HashMap<u64, Vec<i64>> =
            std::collections::HashMap::new();
        for m in members {
            by_guild.entry(m.guild).or_default().push(to_i64(m.user));
        }
        *self
            .hidden
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(by_guild);
    }

    /// Every member who opted out, in every server.
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn opted_out_members(&self) -> Result<Vec<MemberKey>, StoreError> {
        let docs: Vec<Document> = self
            .decisive(MEMBER_PRIVACY)
            .find(doc! { "opted_out": true })
            .await?
            .try_collect()
            .await?;
        Ok(docs
            .iter()
            .map(|d| MemberKey {
                guild: from_i64(int(d, "guild_id")),
                user: from_i64(int(d, "user_id")),
            })
            .collect())
    }

    /// Records that `member` opted out (or back in) at `at`.
    ///
    /// # Errors
    /// The server is unreachable or refuses.
    pub async fn set_opted_out(
        &self,
        member: MemberKey,
        opted_out: bool,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.decisive(MEMBER_PRIVACY)
            .update_one(
                doc! { "_id": format!("{}:{}", member.guild, member.user) },
                doc! { "$set": {
                    "guild_id": to_i64(member.guild),
                    "user_id": to_i64(member.user),
                    "opted_out": opted_out,
                    "at": DateTime::from_millis(at),
                } },
            )
            .upsert(true)
            .await?;
        Ok(())
    }

    /// Everything stored about `member`, read now.
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn member_documents(&self, member: MemberKey) -> Result<MemberDocuments, StoreError> {
        let of = |coll: &'static str| {
            let filter = doc! { "guild_id": to_i64(member.guild), "user_id": to_i64(member.user) };
            async move {
                let docs: Vec<Document> = self
                    .decisive(coll)
                    .find(filter)
                    .sort(doc! { "_id": 1 })
                    .await?
                    .try_collect()
                    .await?;
                Ok::<_, StoreError>(docs)
            }
        };
        Ok(MemberDocuments {
            totals: of(MEMBER_STATS).await?,
            days: of(MEMBER_DAYS).await?,
            weeks: of(MEMBER_WEEKS).await?,
            months: of(MEMBER_MONTHS).await?,
            sessions: of(VOICE_SEGMENTS).await?,
            open_session: of(VOICE_SESSIONS).await?,
            audit: of(AUDIT_LOG).await?,
            privacy: of(MEMBER_PRIVACY).await?,
        })
    }
}

impl MemberDocuments {
    /// The export: `{guild_id, user_id, totals, days, weeks, months,
    /// sessions, open_session, corrections, audit, opted_out}`, documents in
    /// MongoDB's relaxed extended JSON (dates as `{"$date": ...}`).
    #[must_use]
    pub fn export_json(&self, member: MemberKey) -> serde_json::Value {
        let list = |docs: &[Document]| -> Vec<serde_json::Value> {
            docs.iter()
                .map(|d| mongodb::bson::Bson::Document(d.clone()).into_relaxed_extjson())
                .collect()
        };
        let corrections: Vec<&Document> = self
            .audit
            .iter()
            .filter(|d| d.get_str("action") == Ok("adjust"))
            .collect();
        let opted_out = self
            .privacy
            .first()
            .is_some_and(|d| d.get_bool("opted_out").unwrap_or(false));
        serde_json::json!({
            "guild_id": member.guild.to_string(),
            "user_id": member.user.to_string(),
            "totals": self.totals.first().map(|d| mongodb::bson::Bson::Document(d.clone()).into_relaxed_extjson()),
            "days": list(&self.days),
            "weeks": list(&self.weeks),
            "months": list(&self.months),
            "sessions": list(&self.sessions),
            "open_session": self.open_session.first().map(|d| mongodb::bson::Bson::Document(d.clone()).into_relaxed_extjson()),
            "corrections": corrections.iter().map(|d| mongodb::bson::Bson::Document((*d).clone()).into_relaxed_extjson()).collect::<Vec<_>>(),
            "audit": list(&self.audit),
            "opted_out": opted_out,
        })
    }
}
