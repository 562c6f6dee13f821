//! How long the toy waits before connecting again after a failure: exponential back-off
//! with *equal jitter*, as a pure function the simulator and the firmware share.
//!
//! After the `attempt`-th failure in a row (a connection that could not be opened or was
//! lost, or an authentication the server refused), the ceiling is
//! `RECONNECT_INITIAL_MS × 2^(attempt − 1)`, at most [`RECONNECT_MAX_MS`], and the wait is
//! half the ceiling plus a random part of up to the other half. Equal jitter, not full
//! jitter: toys spread their retries out, and every wait is still at least half its
//! ceiling, so a toy the server keeps refusing tries at most 7 times a minute and, once the
//! ceiling is reached, about once every 4 minutes. The count starts again from the first
//! attempt after the server accepts the toy ([`crate::Action::ConnectionAccepted`]).

/// The ceiling of the first wait after a failure.
pub const RECONNECT_INITIAL_MS: u64 = 1_000;
/// The largest ceiling: a toy the server refuses tries about every 2.5 to 5 minutes.
pub const RECONNECT_MAX_MS: u64 = 5 * 60 * 1000;

/// The shortest and longest wait after the `attempt`-th failure in a row (1 for the first;
/// 0 is taken as 1).
pub fn reconnect_wait_range_ms(attempt: u32) -> (u64, u64) {
    let doublings = attempt.saturating_sub(1);
    let ceiling = 1u64
        .checked_shl(doublings)
        .and_then(|factor| RECONNECT_INITIAL_MS.checked_mul(factor))
        .map_or(RECONNECT_MAX_MS, |ms| ms.min(RECONNECT_MAX_MS));
    let floor = ceiling / 2;
    (floor, ceiling)
}

/// The wait after the `attempt`-th failure in a row, with `random` (any value, drawn
/// afresh for each wait) choosing where it falls in [`reconnect_wait_range_ms`].
pub fn reconnect_wait_ms(attempt: u32, random: u64) -> u64 {
    let (floor, ceiling) = reconnect_wait_range_ms(attempt);
    let span = ceiling - floor + 1;
    floor + random % span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_wait_is_half_a_second_to_a_second() {
        assert_eq!(reconnect_wait_range_ms(1), (500, 1_000));
        assert_eq!(reconnect_wait_range_ms(0), (500, 1_000));
        assert_eq!(reconnect_wait_ms(1, 0), 500);
        assert_eq!(reconnect_wait_ms(1, 500), 1_000);
        assert_eq!(reconnect_wait_ms(1, u64::MAX), 500 + u64::MAX % 501);
    }

    #[test]
    fn the_ceiling_doubles_until_five_minutes() {
        let ceilings: alloc::vec::Vec<u64> =
            (1..=12).map(|a| reconnect_wait_range_ms(a).1).collect();
        assert_eq!(
            ceilings,
            [
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000,
                300_000, 300_000
            ]
        );
        for attempt in [10, 40, 64, 65, 1_000, u32::MAX] {
            assert_eq!(
                reconnect_wait_range_ms(attempt),
                (RECONNECT_MAX_MS / 2, RECONNECT_MAX_MS),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn every_wait_falls_in_its_range_and_the_jitter_covers_it() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for attempt in 1..=20 {
            let (floor, ceiling) = reconnect_wait_range_ms(attempt);
            assert!(floor >= RECONNECT_INITIAL_MS / 2 && ceiling <= RECONNECT_MAX_MS);
            assert_eq!(floor, ceiling / 2);
            let (mut lowest, mut highest) = (u64::MAX, 0);
            for _ in 0..2_000 {
                // xorshift: any sequence of values will do.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let wait = reconnect_wait_ms(attempt, state);
                assert!(
                    (floor..=ceiling).contains(&wait),
                    "attempt {attempt}: {wait}"
                );
                lowest = lowest.min(wait);
                highest = highest.max(wait);
            }
            // The random part spreads over the whole upper half, not one value.
            let span = ceiling - floor;
            assert!(
                lowest < floor + span / 4,
                "attempt {attempt}: lowest {lowest}"
            );
            assert!(
                highest > ceiling - span / 4,
                "attempt {attempt}: highest {highest}"
            );
        }
    }

    #[test]
    fn a_refused_toy_tries_at_most_seven_times_a_minute() {
        // Attempt k+1 comes after the k waits before it, each at least its floor.
        let mut earliest = 0u64;
        let mut attempts_in_a_minute = 1;
        for attempt in 1.. {
            earliest += reconnect_wait_range_ms(attempt).0;
            if earliest > 60_000 {
                break;
            }
            attempts_in_a_minute += 1;
        }
        assert_eq!(attempts_in_a_minute, 7);
    }
}
