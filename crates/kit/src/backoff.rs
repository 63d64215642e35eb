//! Waiting between calls that failed for a reason outside the work itself (a service restarting,
//! a connection refused): exponential, capped, and jittered, so that the many callers one restart
//! interrupts do not all come back in the same instant.

use std::time::Duration;

use rand::Rng;

pub struct Backoff {
    step: Duration,
    max: Duration,
}

impl Backoff {
    /// Waits of about `first`, doubling up to about `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            step: first.min(max),
            max,
        }
    }

    /// The next wait: between half of the current step and all of it ("equal jitter": never
    /// zero, never all callers at once), the step doubling up to the cap.
    pub fn next_wait(&mut self) -> Duration {
        let step = self.step;
        self.step = self.step.saturating_mul(2).min(self.max);
        let half = step / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=step - half)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_within_their_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(700));
        let steps = [100, 200, 400, 700, 700, 700];
        let waits: Vec<Duration> = steps.iter().map(|_| backoff.next_wait()).collect();
        for (wait, step) in waits.iter().zip(steps) {
            let step = Duration::from_millis(step);
            assert!(
                *wait >= step / 2 && *wait <= step,
                "{wait:?} is not within half of {step:?} and all of it"
            );
        }
    }

    #[test]
    fn waits_are_spread_rather_than_equal() {
        let waits: std::collections::HashSet<Duration> = (0..32)
            .map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).next_wait())
            .collect();
        assert!(waits.len() > 1, "32 first waits were all {waits:?}");
    }
}
