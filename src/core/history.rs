//! A member's sessions for `/history` and `study-tracker history`: stored
//! voice segments grouped into sessions, newest first.
//!
//! A session is a run of segments that follow each other without a gap: a
//! camera toggle or a move closes one segment and opens the next at the same
//! instant (`next.start == previous.end`); a leave ends the session, so the
//! next join starts a new one. A session's seconds are the sums of its
//! segments' stored whole seconds (`secs`), the very numbers the totals were
//! incremented by, so the sessions add up exactly to what `/ud` shows for
//! the same stretch. A session's channel is the channel of its *first*
//! segment (where it began), which is what a member remembers and does not
//! change as the session goes on.

use super::correction::What;
use super::tracker::Pending;
use super::{whole_secs, Millis};

/// One stored voice segment, as the history reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistorySegment {
    pub channel: u64,
    pub camera: bool,
    pub start: Millis,
    /// The last credited instant.
    pub end: Millis,
    /// The whole seconds credited to the segment (what the totals hold).
    pub secs: i64,
}

/// A member's latest segments as the store read them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredHistory {
    /// The latest segments, in any order.
    pub segments: Vec<HistorySegment>,
    /// `segment_start` of the member's open checkpoint, if one is open.
    pub open_segment_start: Option<Millis>,
    /// The member's latest corrections (`/adjust`), newest first.
    pub corrections: Vec<HistoryCorrection>,
    /// Whether `segments` holds every segment of the member and
    /// `corrections` every correction (else older ones were left unread,
    /// and the oldest session may be cut short).
    pub complete: bool,
}

/// A correction, as the history shows it: a line of its own, not a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryCorrection {
    pub at: Millis,
    pub what: What,
    pub amount: i64,
}

/// One stay in voice, from a join to a leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    pub start: Millis,
    /// The last credited instant (for an open session, how far it is counted).
    pub end: Millis,
    /// The channel of the session's first segment (where it began).
    pub channel: u64,
    pub cam_on_secs: i64,
    pub cam_off_secs: i64,
    /// The member is still in it (shown as "now", `end: null` in JSON).
    pub open: bool,
    /// Not a stay but a correction made at `start` (`/adjust`): what it
    /// changed and by how much (its seconds are in `cam_on_secs` or
    /// `cam_off_secs` too, so the lines still add up to the totals).
    pub correction: Option<(What, i64)>,
}

impl Session {
    #[must_use]
    pub fn total_secs(&self) -> i64 {
        self.cam_on_secs + self.cam_off_secs
    }

    fn add(&mut self, camera: bool, secs: i64) {
        if camera {
            self.cam_on_secs += secs;
        } else {
            self.cam_off_secs += secs;
        }
    }
}

/// Groups segments into sessions, newest first. The newest session is open
/// when the member's open checkpoint points to its last segment, or to the
/// segment that continues it and has not been credited yet (its start is
/// the last segment's end).
#[must_use]
pub fn sessions(segments: &[HistorySegment], open_segment_start: Option<Millis>) -> Vec<Session> {
    let mut sorted = segments.to_vec();
    sorted.sort_by_key(|s| s.start);
    let mut out: Vec<Session> = Vec::new();
    for seg in &sorted {
        match out.last_mut() {
            // `<=` rather than `==`: segments never overlap, but if they
            // did they would still be one stay.
            Some(s) if seg.start <= s.end => {
                s.end = s.end.max(seg.end);
                s.add(seg.camera, seg.secs);
            }
            _ => {
                let mut s = Session {
                    start: seg.start,
                    end: seg.end,
                    channel: seg.channel,
                    cam_on_secs: 0,
                    cam_off_secs: 0,
                    open: false,
                    correction: None,
                };
                s.add(seg.camera, seg.secs);
                out.push(s);
            }
        }
    }
    if let (Some(at), Some(last), Some(newest)) =
        (open_segment_start, sorted.last(), out.last_mut())
    {
        newest.open = at == last.start || at == last.end;
    }
    out.reverse();
    out
}

/// Adds the uncredited time of the session in progress (the tracker's
/// [`Pending`], as `/ud` adds it) to sessions from [`sessions`]: to the
/// newest one when it is open or ends where the pending time starts, else
/// as a new open session (a join not credited yet).
#[must_use]
pub fn with_pending(mut sessions: Vec<Session>, pending: Option<Pending>) -> Vec<Session> {
    let Some(p) = pending else {
        return sessions;
    };
    let secs = whole_secs(p.from, p.to);
    match sessions.first_mut() {
        Some(s) if s.open || s.end == p.from => {
            s.open = true;
            s.end = s.end.max(p.to);
            s.add(p.camera, secs);
        }
        _ => {
            let mut s = Session {
                start: p.from,
                end: p.to,
                channel: p.channel,
                cam_on_secs: 0,
                cam_off_secs: 0,
                open: true,
                correction: None,
            };
            s.add(p.camera, secs);
            sessions.insert(0, s);
        }
    }
    sessions
}

/// Puts `corrections` among `sessions` (both newest first; after
/// [`with_pending`]), each as a line of its own at the time it was made.
#[must_use]
pub fn with_corrections(sessions: Vec<Session>, corrections: &[HistoryCorrection]) -> Vec<Session> {
    let mut out = sessions;
    for c in corrections {
        let mut s = Session {
            start: c.at,
            end: c.at,
            channel: 0,
            cam_on_secs: 0,
            cam_off_secs: 0,
            open: false,
            correction: Some((c.what, c.amount)),
        };
        match c.what {
            What::CameraOn => s.cam_on_secs = c.amount,
            What::CameraOff => s.cam_off_secs = c.amount,
            What::Messages => {}
        }
        out.push(s);
    }
    // Newest first; a stable sort keeps an open session ahead of a
    // correction made at the same instant.
    out.sort_by_key(|s| std::cmp::Reverse(s.start));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VC1: u64 = 101;
    const VC2: u64 = 102;

    fn seg(channel: u64, camera: bool, start_s: i64, end_s: i64) -> HistorySegment {
        HistorySegment {
            channel,
            camera,
            start: start_s * 1000,
            end: end_s * 1000,
            secs: end_s - start_s,
        }
    }

    #[test]
    fn toggles_and_moves_stay_in_one_session() {
        // Join VC1 with the camera on, turn it off, move to VC2, leave.
        let segs = [
            seg(VC2, false, 150, 200),
            seg(VC1, true, 0, 100),
            seg(VC1, false, 100, 150),
        ];
        let s = sessions(&segs, None);
        assert_eq!(
            s,
            vec![Session {
                start: 0,
                end: 200_000,
                channel: VC1,
                cam_on_secs: 100,
                cam_off_secs: 100,
                open: false,
                correction: None,
            }]
        );
        assert_eq!(s[0].total_secs(), 200);
    }

    #[test]
    fn a_gap_separates_sessions_newest_first() {
        let segs = [
            seg(VC1, true, 0, 60),
            seg(VC1, false, 60, 90),
            // Left at 90, back at 300 in another channel.
            seg(VC2, true, 300, 310),
        ];
        let s = sessions(&segs, None);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].start, s[0].end, s[0].channel),
            (300_000, 310_000, VC2)
        );
        assert_eq!((s[0].cam_on_secs, s[0].cam_off_secs), (10, 0));
        assert_eq!((s[1].start, s[1].end, s[1].channel), (0, 90_000, VC1));
        assert_eq!((s[1].cam_on_secs, s[1].cam_off_secs), (60, 30));
        assert!(!s[0].open && !s[1].open);
        // The sums are the stored seconds, whatever the millisecond ends.
        let total: i64 = s.iter().map(Session::total_secs).sum();
        assert_eq!(total, 60 + 30 + 10);
    }

    #[test]
    fn the_open_checkpoint_marks_the_newest_session_open() {
        let segs = [seg(VC1, true, 0, 60), seg(VC1, false, 300, 320)];
        // The checkpoint points to the last segment.
        let s = sessions(&segs, Some(300_000));
        assert!(s[0].open && !s[1].open);
        // A toggle at 320 not credited yet: the checkpoint's segment starts
        // where the last stored one ends.
        assert!(sessions(&segs, Some(320_000))[0].open);
        // A checkpoint elsewhere (a join with nothing credited yet).
        assert!(!sessions(&segs, Some(900_000))[0].open);
        assert!(!sessions(&segs, None)[0].open);
    }

    #[test]
    fn pending_time_extends_the_open_session_or_starts_one() {
        let stored = sessions(&[seg(VC1, true, 0, 60)], Some(0));
        let p = Pending {
            channel: VC1,
            camera: false,
            from: 60_000,
            to: 75_500,
        };
        let s = with_pending(stored.clone(), Some(p));
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].cam_on_secs, s[0].cam_off_secs, s[0].end),
            (60, 15, 75_500)
        );
        assert!(s[0].open);

        // Closed stored session, then a fresh join not credited yet.
        let closed = sessions(&[seg(VC1, true, 0, 60)], None);
        let fresh = Pending {
            channel: VC2,
            camera: true,
            from: 500_000,
            to: 503_000,
        };
        let s = with_pending(closed.clone(), Some(fresh));
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].channel, s[0].cam_on_secs, s[0].open), (VC2, 3, true));
        assert_eq!(with_pending(closed.clone(), None), closed);
    }

    #[test]
    fn corrections_are_lines_of_their_own_among_the_sessions() {
        let segs = [seg(VC1, true, 0, 100), seg(VC1, false, 500, 600)];
        let list = with_corrections(
            sessions(&segs, None),
            &[
                HistoryCorrection {
                    at: 300_000,
                    what: What::CameraOn,
                    amount: -40,
                },
                HistoryCorrection {
                    at: 700_000,
                    what: What::Messages,
                    amount: 3,
                },
            ],
        );
        let starts: Vec<_> = list
            .iter()
            .map(|s| (s.start, s.correction.is_some()))
            .collect();
        assert_eq!(
            starts,
            [
                (700_000, true),
                (500_000, false),
                (300_000, true),
                (0, false)
            ]
        );
        // The lines add up to the totals: 100 + 100 - 40 seconds.
        assert_eq!(list.iter().map(Session::total_secs).sum::<i64>(), 160);
    }
}
