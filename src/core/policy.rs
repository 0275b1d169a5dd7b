//! What is tracked. The Discord adapter reports plain facts (is the author a
//! bot, which channel and what it is under, which is the AFK channel); these
//! rules, with the server's [`GuildSettings`], decide what counts.

use super::settings::{ChannelPath, GuildSettings};
use super::Presence;

/// A voice state as the adapter saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoiceFacts {
    /// The voice channel, `None` when the member left voice.
    pub channel: Option<u64>,
    /// The category the voice channel is under, if any.
    pub category: Option<u64>,
    /// The member's camera (self video).
    pub camera: bool,
    /// The guild's AFK channel, if it has one.
    pub afk_channel: Option<u64>,
}

/// Whether a user is tracked at all: bots never are.
#[must_use]
pub fn tracks_user(is_bot: bool) -> bool {
    !is_bot
}

/// Whether a member is tracked: not a bot, and not opted out (`/privacy
/// optout`) in that server.
#[must_use]
pub fn tracks_member(is_bot: bool, opted_out: bool) -> bool {
    tracks_user(is_bot) && !opted_out
}

/// Where a tracked member is, as tracking sees it: outside voice, in the AFK
/// channel, or in a channel the server excluded (itself or its category), is
/// no presence.
#[must_use]
pub fn presence(v: VoiceFacts, settings: &GuildSettings) -> Option<Presence> {
    let channel = v.channel.filter(|c| Some(*c) != v.afk_channel)?;
    let path = ChannelPath {
        channel,
        parent: None,
        category: v.category,
    };
    if settings.excludes(path) {
        return None;
    }
    Some(Presence {
        channel,
        camera: v.camera,
    })
}

/// The kinds of message the adapter distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// An ordinary message.
    Regular,
    /// A reply to another message.
    Reply,
    /// System messages: joins, boosts, pins, thread starters, ...
    System,
}

/// A message as the adapter saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageFacts {
    pub in_guild: bool,
    /// Where it was sent (a thread's parent and category included).
    pub channel: ChannelPath,
    pub author_is_bot: bool,
    pub from_webhook: bool,
    pub kind: MessageKind,
}

/// Whether a message counts: a member's own message in a server, in a
/// channel the server did not exclude; not a bot's, not a webhook's, not a
/// system message, not a DM.
#[must_use]
pub fn counts_message(m: MessageFacts, settings: &GuildSettings) -> bool {
    m.in_guild
        && !settings.excludes(m.channel)
        && tracks_user(m.author_is_bot)
        && !m.from_webhook
        && matches!(m.kind, MessageKind::Regular | MessageKind::Reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn afk_and_leaving_are_no_presence() {
        let v = |channel| VoiceFacts {
            channel,
            category: Some(50),
            camera: true,
            afk_channel: Some(9),
        };
        let none = GuildSettings::default();
        assert_eq!(
            presence(v(Some(7)), &none),
            Some(Presence {
                channel: 7,
                camera: true
            })
        );
        assert_eq!(presence(v(Some(9)), &none), None);
        assert_eq!(presence(v(None), &none), None);
    }

    #[test]
    fn excluded_channels_and_categories_are_no_presence_and_count_no_messages() {
        let excluding = |id| GuildSettings {
            excluded: [id].into(),
            ..GuildSettings::default()
        };
        let v = VoiceFacts {
            channel: Some(7),
            category: Some(50),
            camera: false,
            afk_channel: None,
        };
        assert_eq!(presence(v, &excluding(7)), None);
        assert_eq!(presence(v, &excluding(50)), None);
        assert!(presence(v, &excluding(8)).is_some());
        let m = MessageFacts {
            in_guild: true,
            channel: ChannelPath {
                channel: 3,
                parent: Some(4),
                category: Some(50),
            },
            author_is_bot: false,
            from_webhook: false,
            kind: MessageKind::Regular,
        };
        for id in [3, 4, 50] {
            assert!(!counts_message(m, &excluding(id)), "{id}");
        }
        assert!(counts_message(m, &excluding(7)));
    }

    #[test]
    fn only_members_own_guild_messages_count() {
        let ok = MessageFacts {
            in_guild: true,
            channel: ChannelPath::top(3),
            author_is_bot: false,
            from_webhook: false,
            kind: MessageKind::Regular,
        };
        let s = GuildSettings::default();
        assert!(counts_message(ok, &s));
        assert!(counts_message(
            MessageFacts {
                kind: MessageKind::Reply,
                ..ok
            },
            &s
        ));
        for not in [
            MessageFacts {
                in_guild: false,
                ..ok
            },
            MessageFacts {
                author_is_bot: true,
                ..ok
            },
            MessageFacts {
                from_webhook: true,
                ..ok
            },
            MessageFacts {
                kind: MessageKind::System,
                ..ok
            },
        ] {
            assert!(!counts_message(not, &s), "{not:?}");
        }
        assert!(!tracks_user(true));
        assert!(tracks_member(false, false));
        assert!(!tracks_member(false, true));
        assert!(!tracks_member(true, false));
    }
}
