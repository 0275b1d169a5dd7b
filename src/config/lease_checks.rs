//! Setting combinations under which the lease cannot do what it promises:
//! said once at start (warnings, not refusals: each still runs).

use super::TrackingSettings;

/// The shortest `LEASE_TTL_SECS` that rides out a slow command: a command
/// may take up to 15 s and server selection 5 s, against renewals every
/// third of the TTL and a validity of two thirds.
const MIN_STEADY_TTL_SECS: u64 = 5;

impl TrackingSettings {
    /// What the lease settings make impossible, one line each (empty: the
    /// combination holds).
    #[must_use]
    pub fn lease_warnings(&self) -> Vec<String> {
        let (ttl, flush, grace) = (
            self.lease_ttl_secs,
            self.flush_interval_secs,
            self.resume_grace_secs,
        );
        let mut out = Vec::new();
        if ttl == 0 {
            return out;
        }
        if grace == 0 {
            out.push("RESUME_GRACE_SECS=0 with the lease: every takeover, a graceful handover too, starts each open session anew, so the seconds of the handover are lost; set RESUME_GRACE_SECS above LEASE_TTL_SECS + FLUSH_INTERVAL_SECS".to_owned());
        } else if ttl + flush > grace {
            out.push(format!("LEASE_TTL_SECS ({ttl}) + FLUSH_INTERVAL_SECS ({flush}) exceed RESUME_GRACE_SECS ({grace}): after a holder crashes the standby takes over too late to resume any session (members in voice are tracked from the takeover); raise RESUME_GRACE_SECS or lower the others"));
        }
        if ttl < MIN_STEADY_TTL_SECS {
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
    fn combinations_that_make_resuming_impossible_are_named() {
        let t = tracking(&["--resume-grace-secs", "60", "--flush-interval-secs", "60"]);
        let w = t.lease_warnings();
        assert!(
            w.iter()
                .any(|l| l.contains("LEASE_TTL_SECS") && l.contains("RESUME_GRACE_SECS (60)")),
            "{w:?}"
        );
        let t = tracking(&["--resume-grace-secs", "0"]);
        assert!(t.lease_warnings()[0].starts_with("RESUME_GRACE_SECS=0"));
    }

    #[test]
    fn the_defaults_and_no_lease_say_nothing() {
        let mut t = tracking(&[]);
        t.lease_ttl_secs = 15;
        t.flush_interval_secs = 120;
        t.resume_grace_secs = 300;
        assert!(t.lease_warnings().is_empty(), "{:?}", t.lease_warnings());
        t.lease_ttl_secs = 0;
        t.resume_grace_secs = 0;
        assert!(t.lease_warnings().is_empty());
    }
}
