//! What is tracked. The Discord adapter reports plain facts (is the author a
//! bot, which channel, which is the AFK channel); these rules decide what
//! counts. Per-guild settings will extend them here.

use super::Presence;

/// A voice state as the adapter saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoiceFacts {
    /// The voice channel, `None` when the member left voice.
    pub channel: Option<u64>,
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

/// Where a tracked member is, as tracking sees it: outside voice, or in the
/// AFK channel, is no presence.
#[must_use]
pub fn presence(v: VoiceFacts) -> Option<Presence> {
    let channel = v.channel.filter(|c| Some(*c) != v.afk_channel)?;
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
    pub author_is_bot: bool,
    pub from_webhook: bool,
    pub kind: MessageKind,
}

/// Whether a message counts: a member's own message in a server; not a
/// bot's, not a webhook's, not a system message, not a DM.
#[must_use]
pub fn counts_message(m: MessageFacts) -> bool {
    m.in_guild
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
            camera: true,
            afk_channel: Some(9),
        };
        assert_eq!(
            presence(v(Some(7))),
            Some(Presence {
                channel: 7,
                camera: true
            })
        );
        assert_eq!(presence(v(Some(9))), None);
        assert_eq!(presence(v(None)), None);
    }

    #[test]
    fn only_members_own_guild_messages_count() {
        let ok = MessageFacts {
            in_guild: true,
            author_is_bot: false,
            from_webhook: false,
            kind: MessageKind::Regular,
        };
        assert!(counts_message(ok));
        assert!(counts_message(MessageFacts {
            kind: MessageKind::Reply,
            ..ok
        }));
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
            assert!(!counts_message(not), "{not:?}");
        }
        assert!(!tracks_user(true));
    }
}
