use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const G: u64 = 1;
const GRACE: Millis = 300_000;

fn m(user: u64) -> MemberKey {
    MemberKey { guild: G, user }
}

// Shorthands for the `Option<Presence>` that `voice_update` takes.
#[allow(clippy::unnecessary_wraps)]
fn cam(channel: u64) -> Option<Presence> {
    Some(Presence {
        channel,
        camera: true,
    })
}

#[allow(clippy::unnecessary_wraps)]
fn nocam(channel: u64) -> Option<Presence> {
    Some(Presence {
        channel,
        camera: false,
    })
}

/// Seconds per (member, camera state).
type PerCamera = BTreeMap<(MemberKey, bool), i64>;

/// Sums credited seconds per (member, camera).
fn totals(effects: &[Effect]) -> PerCamera {
    let mut t = BTreeMap::new();
    for e in effects {
        if let Effect::Credit(c) = e {
            *t.entry((c.member, c.camera)).or_insert(0) += c.secs();
        }
    }
    t
}

#[test]
fn ninety_second_stay_is_ninety_seconds() {
    let mut t = Tracker::new(GRACE);
    let mut fx = t.voice_update(m(1), nocam(10), 1_000);
    fx.extend(t.voice_update(m(1), None, 91_000));
    assert_eq!(totals(&fx), BTreeMap::from([((m(1), false), 90)]));
    assert!(t.is_empty());
}

#[test]
fn camera_toggle_splits_time_and_segments() {
    let mut t = Tracker::new(GRACE);
    let mut fx = t.voice_update(m(1), cam(10), 0);
    fx.extend(t.voice_update(m(1), nocam(10), 30_000));
    fx.extend(t.voice_update(m(1), None, 75_000));
    assert_eq!(
        totals(&fx),
        BTreeMap::from([((m(1), true), 30), ((m(1), false), 45)])
    );
    let starts: Vec<Millis> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Credit(c) => Some(c.segment_start),
            Effect::Checkpoint { .. } => None,
        })
        .collect();
    assert_eq!(starts, vec![0, 30_000]);
    assert_eq!(fx.last(), Some(&checkpoint(m(1), None)));
}

#[test]
fn flush_then_leave_credits_only_the_remainder() {
    let mut t = Tracker::new(GRACE);
    t.voice_update(m(1), cam(10), 0);
    let flushed = t.flush(120_000);
    assert_eq!(totals(&flushed), BTreeMap::from([((m(1), true), 120)]));
    let left = t.voice_update(m(1), None, 130_000);
    assert_eq!(totals(&left), BTreeMap::from([((m(1), true), 10)]));
    assert!(t.flush(200_000).is_empty());
}

#[test]
fn move_continues_session_with_a_new_segment() {
    let mut t = Tracker::new(GRACE);
    t.voice_update(m(1), nocam(10), 0);
    let fx = t.voice_update(m(1), nocam(11), 5_000);
    assert_eq!(totals(&fx), BTreeMap::from([((m(1), false), 5)]));
    let s = t.session(m(1)).unwrap();
    assert_eq!((s.channel, s.segment_start), (11, 5_000));
}

#[test]
fn snapshot_opens_present_and_closes_absent_members() {
    let mut t = Tracker::new(GRACE);
    t.voice_update(m(1), nocam(10), 0);
    let fx = t.guild_snapshot(
        G,
        &[(
            2,
            Presence {
                channel: 10,
                camera: true,
            },
        )],
        10_000,
    );
    assert_eq!(totals(&fx), BTreeMap::from([((m(1), false), 10)]));
    assert!(t.session(m(1)).is_none());
    assert!(t.session(m(2)).unwrap().camera);
    // Another guild's snapshot leaves this guild alone.
    t.guild_snapshot(2, &[], 20_000);
    assert!(t.session(m(2)).is_some());
}

#[test]
fn restored_session_within_grace_credits_the_gap() {
    let mut t = Tracker::new(GRACE);
    t.restore([RestoredSession {
        member: m(1),
        session: VoiceSession {
            channel: 10,
            camera: true,
            segment_start: 0,
            last_credit: 100_000,
        },
    }]);
    let fx = t.guild_snapshot(
        G,
        &[(
            1,
            Presence {
                channel: 10,
                camera: true,
            },
        )],
        160_000,
    );
    assert_eq!(totals(&fx), BTreeMap::from([((m(1), true), 60)]));
    // Same segment goes on: no new checkpoint needed.
    assert!(!fx.iter().any(|e| matches!(e, Effect::Checkpoint { .. })));
    assert_eq!(t.session(m(1)).unwrap().segment_start, 0);
}

#[test]
fn restored_session_past_grace_or_absent_is_not_credited() {
    let mut t = Tracker::new(GRACE);
    let old = VoiceSession {
        channel: 10,
        camera: false,
        segment_start: 0,
        last_credit: 1_000,
    };
    t.restore([
        RestoredSession {
            member: m(1),
            session: old,
        },
        RestoredSession {
            member: m(2),
            session: old,
        },
    ]);
    let late = 1_000 + GRACE + 1;
    let fx = t.guild_snapshot(
        G,
        &[(
            1,
            Presence {
                channel: 10,
                camera: false,
            },
        )],
        late,
    );
    assert!(totals(&fx).is_empty());
    assert_eq!(t.session(m(1)).unwrap().segment_start, late);
    assert!(fx.contains(&checkpoint(m(2), None)));
    assert_eq!(t.suspended_len(), 0);
}

#[test]
fn clock_going_backwards_never_credits_negative_time() {
    let mut t = Tracker::new(GRACE);
    t.voice_update(m(1), cam(10), 10_000);
    assert!(t.flush(5_000).is_empty());
    let fx = t.voice_update(m(1), None, 12_000);
    assert_eq!(totals(&fx), BTreeMap::from([((m(1), true), 2)]));
}

#[test]
fn clock_stepping_back_before_a_toggle_does_not_double_count() {
    let mut t = Tracker::new(GRACE);
    let mut fx = t.voice_update(m(1), cam(10), 10_000);
    fx.extend(t.flush(20_000));
    fx.extend(t.voice_update(m(1), nocam(10), 15_000));
    fx.extend(t.voice_update(m(1), None, 30_000));
    let total: i64 = totals(&fx).values().sum();
    assert_eq!(total, 20, "20 s of wall time between join and leave");
}

#[test]
fn pending_reports_uncredited_time() {
    let mut t = Tracker::new(GRACE);
    t.voice_update(m(1), cam(10), 0);
    t.flush(60_000);
    assert_eq!(
        t.pending(m(1), 90_000),
        Some(Pending {
            channel: 10,
            camera: true,
            from: 60_000,
            to: 90_000
        })
    );
    assert_eq!(t.pending(m(2), 90_000), None);
}

// ---- properties ----

#[derive(Clone, Debug)]
enum Step {
    /// Advance the clock by this many milliseconds.
    Wait(i64),
    /// Member `user` is now at `presence` (None: left).
    Voice(u64, Option<(u64, bool)>),
    Flush,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0i64..200_000).prop_map(Step::Wait),
        4 => (0u64..4, proptest::option::weighted(0.7, (10u64..13, any::<bool>())))
            .prop_map(|(u, p)| Step::Voice(u, p)),
        2 => Just(Step::Flush),
    ]
}

/// Runs a timeline, returning credited seconds per (member, camera) and the
/// ground truth: time actually spent in voice, integrated state by state.
fn run(steps: &[Step], with_flushes: bool) -> (PerCamera, PerCamera) {
    let mut t = Tracker::new(GRACE);
    let mut now: Millis = 1_700_000_000_000;
    let mut effects = Vec::new();
    let mut state: BTreeMap<MemberKey, (Presence, Millis)> = BTreeMap::new();
    let mut truth = PerCamera::new();
    for s in steps {
        match s {
            Step::Wait(ms) => now += ms,
            Step::Flush if with_flushes => effects.extend(t.flush(now)),
            Step::Flush => {}
            Step::Voice(u, p) => {
                let p = p.map(|(channel, camera)| Presence { channel, camera });
                let member = m(*u);
                let prev = state.get(&member).copied();
                if prev.map(|(pp, _)| pp) != p {
                    if let Some((pp, since)) = prev {
                        *truth.entry((member, pp.camera)).or_insert(0) += whole_secs(since, now);
                    }
                    match p {
                        Some(p) => state.insert(member, (p, now)),
                        None => state.remove(&member),
                    };
                }
                effects.extend(t.voice_update(member, p, now));
            }
        }
    }
    now += 1_000;
    for (member, (p, since)) in &state {
        *truth.entry((*member, p.camera)).or_insert(0) += whole_secs(*since, now);
    }
    effects.extend(t.flush(now));
    truth.retain(|_, v| *v != 0);
    let mut credited = totals(&effects);
    credited.retain(|_, v| *v != 0);
    (credited, truth)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// For any sequence of joins, leaves, moves, toggles and flushes, credited
    /// seconds per member and camera state equal the time actually spent.
    #[test]
    fn credits_equal_time_spent(steps in proptest::collection::vec(step(), 0..60)) {
        let (credited, truth) = run(&steps, true);
        prop_assert_eq!(credited, truth);
    }

    /// Flushes at any moments never change the totals.
    #[test]
    fn flushes_never_change_totals(steps in proptest::collection::vec(step(), 0..60)) {
        let (with, _) = run(&steps, true);
        let (without, _) = run(&steps, false);
        prop_assert_eq!(with, without);
    }

    /// Whole-second timelines are credited exactly, to the second.
    #[test]
    fn whole_second_timelines_are_exact(secs in proptest::collection::vec((1i64..500, any::<bool>()), 1..20)) {
        let mut t = Tracker::new(GRACE);
        let mut now = 1_000_000;
        let mut fx = t.voice_update(m(1), nocam(10), now);
        let (mut on, mut off) = (0, 0);
        for (d, camera) in secs {
            let cur = t.session(m(1)).unwrap().camera;
            now += d * 1000;
            if cur { on += d } else { off += d }
            fx.extend(t.flush(now - 500));
            fx.extend(t.voice_update(m(1), Some(Presence { channel: 10, camera }), now));
        }
        fx.extend(t.voice_update(m(1), None, now));
        let got = totals(&fx);
        prop_assert_eq!(got.get(&(m(1), true)).copied().unwrap_or(0), on);
        prop_assert_eq!(got.get(&(m(1), false)).copied().unwrap_or(0), off);
    }
}
