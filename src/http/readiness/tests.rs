use std::time::Duration;

use super::*;
use crate::app::{Lease, LeaseState};

const NOW: Millis = 1_800_000_000_000;

const LIMITS: Limits = Limits {
    db_window: Duration::from_secs(30),
    max_backlog: 100,
};

/// Everything holds: a connected shard, MongoDB answered a second ago.
fn ready() -> Snapshot {
    Snapshot {
        now: NOW,
        stopping: false,
        lease: Lease::SINGLE_INSTANCE,
        gateway: Gateway::Seen(Link::Healthy),
        guilds_seen: true,
        db: Contact {
            last_answer: Some(NOW - 1_000),
            last_failure: None,
        },
        backlog: 0,
    }
}

#[test]
fn ready_when_every_condition_holds() {
    let r = readiness(&ready(), &LIMITS);
    assert!(r.ready, "{r:?}");
    assert!(r.lease.held && r.shards.ok && r.mongodb.ok && r.spool.ok);
    assert_eq!(r.shards.state, "connected");
    assert_eq!(r.mongodb.last_answer_secs_ago, Some(1.0));
}

#[test]
fn the_single_instance_holds_the_lease_at_epoch_zero() {
    let r = readiness(&ready(), &LIMITS);
    assert_eq!(r.lease.state, "holder");
    assert_eq!(r.lease.epoch, 0);
    assert_eq!(r.lease.mode, "single instance (LEASE_TTL_SECS=0)");
}

#[test]
fn a_warm_standby_is_ready_and_says_it_stands_by() {
    let mut s = ready();
    s.lease = Lease {
        state: LeaseState::Standby,
        epoch: 7,
        mode: "test",
        answers: false,
    };
    let r = readiness(&s, &LIMITS);
    assert!(r.ready && r.lease.ok && !r.lease.held, "{r:?}");
    assert_eq!(r.lease.state, "standby");
}

#[test]
fn counting_provisionally_is_not_ready() {
    let mut s = ready();
    s.lease = Lease {
        state: LeaseState::Provisional,
        epoch: 0,
        mode: "test",
        answers: true,
    };
    let r = readiness(&s, &LIMITS);
    assert!(!r.ready && !r.lease.ok);
    assert!(r.shards.ok && r.mongodb.ok && r.spool.ok);
}

#[test]
fn not_warm_before_a_guild_snapshot() {
    let mut s = ready();
    s.guilds_seen = false;
    let r = readiness(&s, &LIMITS);
    assert!(!r.ready && !r.shards.ok && !r.shards.guilds_seen);
}

#[test]
fn shards_must_be_connected_unless_headless() {
    for (gateway, ok, state) in [
        (Gateway::Headless, true, "headless"),
        (Gateway::Starting, false, "starting"),
        (Gateway::Seen(Link::Down), false, "down"),
        (Gateway::Seen(Link::Stalled), false, "stalled"),
        (Gateway::Seen(Link::Healthy), true, "connected"),
    ] {
        let mut s = ready();
        s.gateway = gateway;
        let r = readiness(&s, &LIMITS);
        assert_eq!((r.ready, r.shards.ok, r.shards.state), (ok, ok, state));
    }
}

#[test]
fn mongodb_must_have_answered_within_the_window() {
    let mut s = ready();
    s.db.last_answer = Some(NOW - 30_000);
    assert!(readiness(&s, &LIMITS).ready, "the window's edge counts");
    s.db.last_answer = Some(NOW - 30_001);
    let r = readiness(&s, &LIMITS);
    assert!(!r.ready && !r.mongodb.ok);
    assert_eq!(r.mongodb.window_secs, 30);
    s.db.last_answer = None;
    let r = readiness(&s, &LIMITS);
    assert!(!r.ready);
    assert_eq!(r.mongodb.last_answer_secs_ago, None);
}

#[test]
fn a_failure_after_the_last_answer_is_not_ready_until_the_next_answer() {
    let mut s = ready();
    s.db.last_failure = Some(NOW - 500);
    let r = readiness(&s, &LIMITS);
    assert!(!r.ready && !r.mongodb.ok && r.mongodb.last_command_failed);
    s.db.last_answer = Some(NOW - 100);
    assert!(readiness(&s, &LIMITS).ready);
    s.db = Contact {
        last_answer: None,
        last_failure: Some(NOW),
    };
    assert!(readiness(&s, &LIMITS).mongodb.last_command_failed);
}

#[test]
fn the_backlog_may_reach_the_threshold_but_not_pass_it() {
    let mut s = ready();
    s.backlog = 100;
    assert!(readiness(&s, &LIMITS).ready);
    s.backlog = 101;
    let r = readiness(&s, &LIMITS);
    assert!(!r.ready && !r.spool.ok);
    assert_eq!((r.spool.backlog, r.spool.max_backlog), (101, 100));
}

#[test]
fn shutting_down_is_not_ready() {
    let mut s = ready();
    s.stopping = true;
    let r = readiness(&s, &LIMITS);
    assert!(!r.ready && r.stopping);
}

#[test]
fn the_body_names_each_condition() {
    let mut s = ready();
    s.gateway = Gateway::Headless;
    s.db.last_answer = None;
    let json = serde_json::to_value(readiness(&s, &LIMITS)).unwrap();
    assert_eq!(json["ready"], false);
    assert_eq!(json["lease"]["held"], true);
    assert_eq!(json["shards"]["state"], "headless");
    assert_eq!(json["mongodb"]["ok"], false);
    assert!(json["mongodb"]["last_answer_secs_ago"].is_null());
    assert_eq!(json["spool"]["ok"], true);
}

#[test]
fn alive_while_every_loop_runs_or_while_stopping() {
    assert!(liveness(false, &[("spooler", false), ("applier", false)]).alive);
    let dead = liveness(false, &[("spooler", false), ("applier", true)]);
    assert!(!dead.alive);
    assert_eq!(dead.stopped_loops, vec!["applier"]);
    assert!(liveness(true, &[("applier", true)]).alive);
    assert!(liveness(false, &[]).alive);
}
