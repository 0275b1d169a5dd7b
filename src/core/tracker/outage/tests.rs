use std::collections::BTreeMap;

use super::super::{checkpoint, Effect, Tracker};
use super::GatewayState;
use crate::core::link::Link;
use crate::core::{MemberKey, Millis, Presence};

pub(super) const G: u64 = 1;
pub(super) const GRACE: Millis = 300_000;

pub(super) fn m(user: u64) -> MemberKey {
    MemberKey { guild: G, user }
}

fn cam(channel: u64) -> Presence {
    Presence {
        channel,
        camera: true,
    }
}

/// Credited seconds per member.
fn secs(effects: &[Effect]) -> BTreeMap<MemberKey, i64> {
    let mut t = BTreeMap::new();
    for e in effects {
        if let Effect::Credit(c) = e {
            *t.entry(c.member).or_insert(0) += c.secs();
        }
    }
    t
}

fn secs_of(effects: &[Effect], user: u64) -> i64 {
    secs(effects).get(&m(user)).copied().unwrap_or(0)
}

/// A watched tracker with member 1 (and `others`) in voice since 0, the
/// gateway healthy until 60 s and seen down at 61 s; returns the effects of
/// the loss.
fn lost_at_60s(others: &[u64]) -> (Tracker, Vec<Effect>) {
    let mut t = Tracker::new(GRACE);
    t.gateway_link(Link::Healthy, 0);
    for user in std::iter::once(1).chain(others.iter().copied()) {
        t.voice_update(m(user), Some(cam(10)), 0);
    }
    t.gateway_link(Link::Healthy, 60_000);
    let fx = t.gateway_link(Link::Down, 61_000);
    (t, fx)
}

#[test]
fn flushes_never_pass_the_last_healthy_moment() {
    let mut t = Tracker::new(GRACE);
    t.gateway_link(Link::Healthy, 0);
    t.voice_update(m(1), Some(cam(10)), 0);
    t.gateway_link(Link::Healthy, 5_000);
    assert_eq!(secs_of(&t.flush(7_000), 1), 5);
    // An overdue heartbeat ack: nothing is known, nothing more is credited.
    t.gateway_link(Link::Stalled, 8_000);
    assert!(t.flush(9_000).is_empty());
    t.gateway_link(Link::Healthy, 10_000);
    assert_eq!(secs_of(&t.flush(10_500), 1), 5);
}

#[test]
fn a_lost_gateway_credits_up_to_the_last_healthy_moment_and_suspends() {
    let (mut t, fx) = lost_at_60s(&[]);
    assert_eq!(secs_of(&fx, 1), 60);
    assert_eq!(t.gateway(), GatewayState::Down { since: 60_000 });
    assert!(t.is_empty());
    assert_eq!(t.suspended_len(), 1);
    // The checkpoint stays open (a restart meanwhile resumes it), and flushes
    // credit nothing while the gateway is down.
    assert!(!fx.iter().any(|e| matches!(e, Effect::Checkpoint { .. })));
    assert!(t.flush(200_000).is_empty());
    assert!(t.gateway_link(Link::Down, 300_000).is_empty());
}

#[test]
fn a_stalled_link_then_down_loses_the_gateway_at_the_last_healthy_moment() {
    let mut t = Tracker::new(GRACE);
    t.gateway_link(Link::Healthy, 0);
    t.voice_update(m(1), Some(cam(10)), 0);
    t.gateway_link(Link::Healthy, 5_000);
    t.gateway_link(Link::Stalled, 40_000);
    let fx = t.gateway_link(Link::Down, 50_000);
    assert_eq!(secs_of(&fx, 1), 5);
    assert_eq!(t.gateway(), GatewayState::Down { since: 5_000 });
}

#[test]
fn a_leave_replayed_after_a_resume_closes_at_the_disconnect() {
    let (mut t, mut fx) = lost_at_60s(&[]);
    // Replayed on RESUME, an hour later: she left one minute into it.
    let left = t.voice_update(m(1), None, 3_660_000);
    assert!(secs(&left).is_empty());
    assert!(left.contains(&checkpoint(m(1), None)));
    fx.extend(left);
    fx.extend(t.gateway_resumed(3_660_100));
    fx.extend(t.flush(3_700_000));
    assert_eq!(secs_of(&fx, 1), 60);
    assert!(t.is_empty());
    assert_eq!(t.suspended_len(), 0);
}

#[test]
fn a_replayed_toggle_then_leave_credits_nothing_of_the_outage() {
    let (mut t, _) = lost_at_60s(&[]);
    // Replayed: she turned her camera off, then left; both during the outage.
    let mut fx = t.voice_update(
        m(1),
        Some(Presence {
            channel: 10,
            camera: false,
        }),
        120_000,
    );
    fx.extend(t.voice_update(m(1), None, 120_000));
    fx.extend(t.gateway_resumed(120_001));
    assert!(secs(&fx).is_empty());
    assert!(fx.contains(&checkpoint(m(1), None)));
    assert!(t.is_empty());
}

#[test]
fn a_replayed_move_is_applied_when_the_gateway_is_back() {
    let (mut t, _) = lost_at_60s(&[]);
    assert!(t.voice_update(m(1), Some(cam(11)), 90_000).is_empty());
    let fx = t.gateway_resumed(90_000);
    // Within grace: the gap goes to the segment she was in, and the new
    // channel starts at the reconnect.
    assert_eq!(secs_of(&fx, 1), 30);
    let s = *t.session(m(1)).unwrap();
    assert_eq!((s.channel, s.segment_start), (11, 90_000));
    assert!(fx.contains(&checkpoint(m(1), Some(&s))));
}

#[test]
fn only_ready_or_resumed_bring_the_gateway_back() {
    let (mut t, _) = lost_at_60s(&[]);
    // The shard reports itself connected just before READY or RESUMED.
    t.gateway_link(Link::Healthy, 80_000);
    assert_eq!(t.gateway(), GatewayState::Down { since: 60_000 });
    t.gateway_connected(80_100);
    t.gateway_link(Link::Healthy, 80_250);
    assert_eq!(
        t.gateway(),
        GatewayState::Up {
            healthy_until: 80_250
        }
    );
}

#[test]
fn a_resume_within_grace_credits_the_gap_and_the_session_goes_on() {
    let (mut t, _) = lost_at_60s(&[]);
    let fx = t.gateway_resumed(120_000);
    assert_eq!(secs_of(&fx, 1), 60);
    assert!(!fx.iter().any(|e| matches!(e, Effect::Checkpoint { .. })));
    assert_eq!(t.session(m(1)).unwrap().segment_start, 0);
    assert_eq!(
        t.gateway(),
        GatewayState::Up {
            healthy_until: 120_000
        }
    );
    assert_eq!(secs_of(&t.voice_update(m(1), None, 130_000), 1), 10);
}

#[test]
fn a_resume_beyond_grace_starts_a_new_segment_at_the_reconnect() {
    let (mut t, _) = lost_at_60s(&[]);
    let back = 60_000 + GRACE + 1;
    let fx = t.gateway_resumed(back);
    assert!(secs(&fx).is_empty(), "the outage is not credited");
    let s = *t.session(m(1)).unwrap();
    assert_eq!((s.segment_start, s.last_credit), (back, back));
    assert!(fx.contains(&checkpoint(m(1), Some(&s))));
    assert_eq!(secs_of(&t.voice_update(m(1), None, back + 10_000), 1), 10);
}

#[test]
fn a_snapshot_after_a_new_session_resolves_like_a_restart() {
    let (mut t, _) = lost_at_60s(&[2]);
    t.gateway_connected(100_000);
    assert_eq!(t.suspended_len(), 2, "waiting for the snapshot");
    // Member 1 is still in voice (gap within grace), member 2 left meanwhile.
    let fx = t.guild_snapshot(G, &[(1, cam(10))], 100_050);
    assert_eq!(secs_of(&fx, 1), 40);
    assert_eq!(secs_of(&fx, 2), 0);
    assert!(fx.contains(&checkpoint(m(2), None)));
    assert!(t.session(m(1)).is_some() && t.session(m(2)).is_none());
    assert_eq!(t.suspended_len(), 0);
}

#[test]
fn a_resume_leaves_sessions_restored_after_a_restart_to_the_snapshot() {
    let mut t = Tracker::new(GRACE);
    t.restore([super::super::RestoredSession {
        member: m(3),
        session: super::super::VoiceSession {
            channel: 10,
            camera: false,
            segment_start: 0,
            last_credit: 1_000,
        },
    }]);
    t.gateway_link(Link::Healthy, 2_000);
    t.gateway_link(Link::Down, 3_000);
    assert!(t.gateway_resumed(4_000).is_empty());
    assert_eq!(t.suspended_len(), 1, "nothing said member 3 is in voice");
}

#[test]
fn a_member_who_joined_during_the_outage_counts_from_the_replay() {
    let (mut t, _) = lost_at_60s(&[]);
    t.voice_update(m(2), Some(cam(10)), 90_000);
    // Not flushed before the resume: the gateway is still down.
    assert!(t.flush(95_000).is_empty());
    t.gateway_resumed(90_100);
    t.gateway_link(Link::Healthy, 100_000);
    assert_eq!(secs_of(&t.flush(100_000), 2), 10);
}

#[test]
fn a_loss_right_after_a_resume_is_dated_at_the_resume() {
    let (mut t, _) = lost_at_60s(&[]);
    t.gateway_resumed(70_000);
    // Lost again before any healthy observation: the resume was the last
    // moment known healthy.
    let fx = t.gateway_link(Link::Down, 70_400);
    assert!(secs(&fx).is_empty());
    assert_eq!(t.gateway(), GatewayState::Down { since: 70_000 });
    assert_eq!(t.suspended_len(), 1);
}
