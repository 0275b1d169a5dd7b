//! The outage rules as a property: random timelines of voice changes,
//! flushes, observations, drops and reconnects (both kinds), checked
//! against the ground truth of who was in voice when.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::super::{Effect, Tracker};
use super::tests::{m, G, GRACE};
use crate::core::link::Link;
use crate::core::{MemberKey, Millis, Presence};

#[derive(Clone, Debug)]
enum Step {
    Wait(i64),
    /// Member `user` is now at `presence` (None: left), seen by Discord.
    Voice(u64, Option<(u64, bool)>),
    Flush,
    /// The adapter's observation: healthy (or stalled) if connected, else down.
    Poll {
        stalled: bool,
    },
    /// The gateway drops; the next observation sees it.
    Drop,
    /// Reconnect (the outage is observed first at the latest): `RESUME`
    /// (missed events replayed, then `RESUMED`) or a new session (`READY` and
    /// a guild snapshot).
    Reconnect {
        resume: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0i64..200_000).prop_map(Step::Wait),
        4 => (0u64..4, proptest::option::weighted(0.7, (10u64..13, any::<bool>())))
            .prop_map(|(u, p)| Step::Voice(u, p)),
        2 => Just(Step::Flush),
        2 => any::<bool>().prop_map(|stalled| Step::Poll { stalled }),
        1 => Just(Step::Drop),
        1 => any::<bool>().prop_map(|resume| Step::Reconnect { resume }),
    ]
}

/// One outage: from the drop to the reconnect, and who was in voice at each end.
struct Outage {
    from: Millis,
    to: Millis,
    at_start: BTreeSet<MemberKey>,
    at_end: BTreeSet<MemberKey>,
}

#[derive(Default)]
struct World {
    now: Millis,
    connected: bool,
    present: BTreeMap<MemberKey, Presence>,
    /// Voice changes Discord saw while the bot was disconnected.
    missed: Vec<(MemberKey, Option<Presence>)>,
    /// Stretches each member was in voice.
    in_voice: BTreeMap<MemberKey, Vec<(Millis, Millis)>>,
    since: BTreeMap<MemberKey, Millis>,
    outages: Vec<Outage>,
    effects: Vec<Effect>,
}

impl World {
    fn voice(&mut self, t: &mut Tracker, member: MemberKey, p: Option<Presence>) {
        match (self.present.contains_key(&member), p) {
            (false, Some(_)) => {
                self.since.insert(member, self.now);
            }
            (true, None) => {
                let from = self.since.remove(&member).unwrap();
                self.in_voice
                    .entry(member)
                    .or_default()
                    .push((from, self.now));
            }
            _ => {}
        }
        match p {
            Some(p) => self.present.insert(member, p),
            None => self.present.remove(&member),
        };
        if self.connected {
            self.effects.extend(t.voice_update(member, p, self.now));
        } else {
            self.missed.push((member, p));
        }
    }

    fn poll(&mut self, t: &mut Tracker, stalled: bool) {
        let link = match (self.connected, stalled) {
            (false, _) => Link::Down,
            (true, false) => Link::Healthy,
            (true, true) => Link::Stalled,
        };
        self.effects.extend(t.gateway_link(link, self.now));
    }

    fn play(&mut self, t: &mut Tracker, s: &Step) {
        match s {
            Step::Wait(ms) => self.now += ms,
            Step::Voice(u, p) => {
                let p = p.map(|(channel, camera)| Presence { channel, camera });
                self.voice(t, m(*u), p);
            }
            Step::Flush => self.effects.extend(t.flush(self.now)),
            Step::Poll { stalled } => self.poll(t, *stalled),
            Step::Drop if self.connected => {
                self.connected = false;
                self.outages.push(Outage {
                    from: self.now,
                    to: Millis::MAX,
                    at_start: self.present.keys().copied().collect(),
                    at_end: BTreeSet::new(),
                });
            }
            Step::Reconnect { resume } if !self.connected => {
                self.poll(t, false);
                self.connected = true;
                let outage = self.outages.last_mut().unwrap();
                outage.to = self.now;
                outage.at_end = self.present.keys().copied().collect();
                let missed = std::mem::take(&mut self.missed);
                if *resume {
                    for (member, p) in missed {
                        self.effects.extend(t.voice_update(member, p, self.now));
                    }
                    self.effects.extend(t.gateway_resumed(self.now));
                } else {
                    t.gateway_connected(self.now);
                    let present: Vec<(u64, Presence)> =
                        self.present.iter().map(|(k, p)| (k.user, *p)).collect();
                    self.effects.extend(t.guild_snapshot(G, &present, self.now));
                }
            }
            Step::Drop | Step::Reconnect { .. } => {}
        }
    }

    /// Where a member may be credited: in voice while the gateway was up,
    /// and across an outage within the grace period if in voice at both ends
    /// (the grace counts from the member's last credit, at or before the drop).
    fn allowed(&self, member: MemberKey) -> Vec<(Millis, Millis)> {
        let mut out = Vec::new();
        for &(from, to) in self.in_voice.get(&member).into_iter().flatten() {
            let mut cur = from;
            for o in &self.outages {
                if o.from < to && o.to > cur {
                    if o.from > cur {
                        out.push((cur, o.from));
                    }
                    cur = cur.max(o.to);
                }
            }
            if cur < to {
                out.push((cur, to));
            }
        }
        for o in &self.outages {
            if o.to - o.from <= GRACE && o.at_start.contains(&member) && o.at_end.contains(&member)
            {
                out.push((o.from, o.to));
            }
        }
        out.sort_unstable();
        out
    }
}

fn covered(allowed: &[(Millis, Millis)], from: Millis, to: Millis) -> bool {
    let mut cur = from;
    for &(a, b) in allowed {
        if a <= cur && cur < b {
            cur = b;
        }
    }
    cur >= to
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Through any drops, resumes, new sessions, stalls and flushes: no
    /// stretch of a member's time is credited twice, and every credited
    /// stretch is time the member spent in voice while the gateway was up,
    /// or an outage within the grace period with the member in voice at both
    /// ends. An outage longer than the grace period is never credited.
    #[test]
    fn outages_are_credited_only_within_grace_and_never_twice(
        steps in proptest::collection::vec(step(), 0..80)
    ) {
        let mut t = Tracker::new(GRACE);
        let mut w = World { now: 1_700_000_000_000, connected: true, ..World::default() };
        w.poll(&mut t, false);
        for s in &steps {
            w.play(&mut t, s);
        }
        w.now += 1_000;
        let ends: Vec<MemberKey> = w.present.keys().copied().collect();
        for member in ends {
            let from = w.since[&member];
            w.in_voice.entry(member).or_default().push((from, w.now));
        }
        if w.outages.last().is_some_and(|o| o.to == Millis::MAX) {
            w.outages.last_mut().unwrap().to = w.now;
        }
        w.poll(&mut t, false);
        w.effects.extend(t.flush(w.now));

        let mut per_member: BTreeMap<MemberKey, Vec<(Millis, Millis)>> = BTreeMap::new();
        for e in &w.effects {
            if let Effect::Credit(c) = e {
                prop_assert!(c.from < c.to);
                per_member.entry(c.member).or_default().push((c.from, c.to));
            }
        }
        for (member, mut credits) in per_member {
            credits.sort_unstable();
            for pair in credits.windows(2) {
                prop_assert!(pair[0].1 <= pair[1].0, "{member:?} credited twice: {pair:?}");
            }
            let allowed = w.allowed(member);
            for &(from, to) in &credits {
                prop_assert!(
                    covered(&allowed, from, to),
                    "{member:?} credited [{from}, {to}) outside {allowed:?}"
                );
            }
        }
    }
}
