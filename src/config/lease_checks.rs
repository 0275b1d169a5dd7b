//! Setting combinations under which the lease cannot do what it promises:
//! those that make resuming impossible are refused at start (one line,
//! naming the variables); one that only makes the lease fragile is a
//! warning.

use super::TrackingSettings;

/// The shortest `LEASE_TTL_SECS` that rides out a slow command: a command
/// may take up to 15 s and server selection 5 s, against renewals every
/// third of the TTL and a validity of two thirds.
const MIN_STEADY_TTL_SECS: u64 = 5;

impl TrackingSettings {
    /// Why these lease settings cannot run, if they cannot: no takeover
    /// could resume a session.
    #[must_use]
    pub fn lease_refusal(&self) -> Option<String> {
        let (ttl, flush, grace) = (
            self.lease_ttl_secs,
            self.flush_interval_secs,
            self.resume_grace_secs,
        );
        if ttl == 0 {
            return None;
        }
        if grace == 0 {
            return Some("RESUME_GRACE_SECS=0 with the lease (LEASE_TTL_SECS > 0): every takeover, a graceful handover too, would start each open session anew and lose the seconds of the handover; set RESUME_GRACE_SECS above LEASE_TTL_SECS + FLUSH_INTERVAL_SECS, or LEASE_TTL_SECS=0 for a single instance".to_owned());
        }
        (ttl + flush > grace).then(|| format!("LEASE_TTL_SECS ({ttl}) + FLUSH_INTERVAL_SECS ({flush}) exceed RESUME_GRACE_SECS ({grace}): after a holder crashes the standby would take over too late to resume any session; raise RESUME_GRACE_SECS or lower the others"))
    }

    /// What the lease settings make fragile, one line each (empty: the
    /// combination holds).
    #[must_use]
    pub fn lease_warnings(&self) -> Vec<String> {
        let ttl = self.lease_ttl_secs;
        let mut out = Vec::new();
        if ttl > 0 && ttl < MIN_STEADY_TTL_SECS {
            out.push(format!("LEASE_TTL_SECS ({ttl}) is below {MIN_STEADY_TTL_SECS}: one slow MongoDB command can let the lease lapse (writes pause) or be taken by a standby"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::Cli;

    fn tracking(args: &[&str]) -> super::TrackingSettings {
        let mut all = vec!["study-tracker"];
        all.extend_from_slice(args);
        Cli::parse_from(all).settings.tracking
    }

    #[test]
    fn combinations_that_make_resuming_impossible_are_refused() {
        let t = tracking(&["--resume-grace-secs", "60", "--flush-interval-secs", "60"]);
        let r = t.lease_refusal().expect("refused");
        assert!(
            r.contains("LEASE_TTL_SECS (15)") && r.contains("RESUME_GRACE_SECS (60)"),
            "{r}"
        );
        let t = tracking(&["--resume-grace-secs", "0"]);
        assert!(t
            .lease_refusal()
            .unwrap()
            .starts_with("RESUME_GRACE_SECS=0"));
        let t = tracking(&["--resume-grace-secs", "0", "--lease-ttl-secs", "0"]);
        assert_eq!(
            t.lease_refusal(),
            None,
            "no lease: resuming off is a choice"
        );
        let t = tracking(&["--lease-ttl-secs", "3"]);
        assert_eq!(t.lease_refusal(), None);
        assert!(t.lease_warnings()[0].contains("LEASE_TTL_SECS (3)"));
    }

    #[test]
    fn the_defaults_and_no_lease_say_nothing() {
        let mut t = tracking(&[]);
        t.lease_ttl_secs = 15;
        t.flush_interval_secs = 120;
        t.resume_grace_secs = 300;
        assert!(t.lease_warnings().is_empty(), "{:?}", t.lease_warnings());
        assert_eq!(t.lease_refusal(), None);
        t.lease_ttl_secs = 0;
        t.resume_grace_secs = 0;
        assert!(t.lease_warnings().is_empty());
        assert_eq!(t.lease_refusal(), None);
    }
}
