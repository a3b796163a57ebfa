//! How a simulated agent behaves when asked to download firmware, and how a fleet's behaviours
//! are mixed.
//!
//! Behaviours are named in kebab-case on the command line (`ok`, `download-404`, ...). A mix such
//! as `ok=16,silent=1` is spread over the fleet by [`mix`], deterministically, so the same
//! arguments always give the same devices the same behaviour.

use std::fmt;
use std::str::FromStr;

/// What a simulated agent does with a `FirmwareImage.{i}.Download()` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// Downloads, verifies, reports success, reboots into the new image.
    Ok,
    /// Fetches a path that does not exist on the file server, so the real HTTP 404 is reported.
    Download404,
    /// Corrupts the downloaded bytes before verifying them, so the SHA-256 check fails.
    BadChecksum,
    /// Downloads fine, but boots back into the old image after the activation reboot.
    BootFails,
    /// Accepts the request, then never reports anything.
    Silent,
    /// Never connects to the broker.
    Offline,
}

impl Behaviour {
    /// Every behaviour, in the order they are listed in messages.
    pub const ALL: [Behaviour; 6] = [
        Behaviour::Ok,
        Behaviour::Download404,
        Behaviour::BadChecksum,
        Behaviour::BootFails,
        Behaviour::Silent,
        Behaviour::Offline,
    ];

    /// The kebab-case name used on the command line and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Ok => "ok",
            Behaviour::Download404 => "download-404",
            Behaviour::BadChecksum => "bad-checksum",
            Behaviour::BootFails => "boot-fails",
            Behaviour::Silent => "silent",
            Behaviour::Offline => "offline",
        }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A behaviour name that is not one of [`Behaviour::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown behaviour {name:?}; valid behaviours are {}", valid_names())]
pub struct UnknownBehaviour {
    pub name: String,
}

fn valid_names() -> String {
    let names: Vec<&str> = Behaviour::ALL.iter().map(|b| b.name()).collect();
    names.join(", ")
}

impl FromStr for Behaviour {
    type Err = UnknownBehaviour;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Behaviour::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| UnknownBehaviour { name: s.to_owned() })
    }
}

/// Why a behaviour mix such as `ok=16,silent=1` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    #[error("behaviour mix entry {entry:?} is not NAME=COUNT (e.g. ok=16)")]
    NotNameCount { entry: String },
    #[error("behaviour mix entry {entry:?}: {reason}")]
    UnknownBehaviour {
        entry: String,
        reason: UnknownBehaviour,
    },
    #[error("behaviour mix entry {entry:?}: {count:?} is not a whole number")]
    BadCount { entry: String, count: String },
    #[error("behaviour {behaviour} appears more than once in the behaviour mix")]
    Duplicate { behaviour: Behaviour },
    #[error("behaviour mix {mix:?} has no positive weight; give at least one NAME=COUNT above 0")]
    NoWeight { mix: String },
}

/// Reads a behaviour mix: comma-separated `NAME=COUNT` weights, e.g. `ok=16,silent=1`.
pub fn parse_mix(text: &str) -> Result<Vec<(Behaviour, usize)>, MixError> {
    let mut weights: Vec<(Behaviour, usize)> = Vec::new();
    for entry in text.split(',').map(str::trim) {
        let (behaviour, count) = parse_mix_entry(entry)?;
        if weights.iter().any(|(b, _)| *b == behaviour) {
            return Err(MixError::Duplicate { behaviour });
        }
        weights.push((behaviour, count));
    }
    if weights.iter().all(|(_, count)| *count == 0) {
        return Err(MixError::NoWeight {
            mix: text.to_owned(),
        });
    }
    Ok(weights)
}

fn parse_mix_entry(entry: &str) -> Result<(Behaviour, usize), MixError> {
    let (name, count) = entry
        .split_once('=')
        .ok_or_else(|| MixError::NotNameCount {
            entry: entry.to_owned(),
        })?;
    let behaviour = name
        .trim()
        .parse()
        .map_err(|reason| MixError::UnknownBehaviour {
            entry: entry.to_owned(),
            reason,
        })?;
    let count = count.trim().parse().map_err(|_| MixError::BadCount {
        entry: entry.to_owned(),
        count: count.to_owned(),
    })?;
    Ok((behaviour, count))
}

/// Assigns behaviours to `n` devices in proportion to `weights`, spreading each behaviour evenly
/// over the fleet (smooth weighted round-robin), so that every run with the same arguments gives
/// device `k` the same behaviour.
///
/// Within each block of `sum(weights)` devices the counts match the weights exactly. With no
/// positive weight every device is [`Behaviour::Ok`].
pub fn mix(n: usize, weights: &[(Behaviour, usize)]) -> Vec<Behaviour> {
    let total: usize = weights.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return vec![Behaviour::Ok; n];
    }
    let mut current = vec![0i128; weights.len()];
    (0..n)
        .map(|_| next_in_round(weights, &mut current, total))
        .collect()
}

fn next_in_round(weights: &[(Behaviour, usize)], current: &mut [i128], total: usize) -> Behaviour {
    for (slot, (_, weight)) in current.iter_mut().zip(weights) {
        *slot += *weight as i128;
    }
    let mut best = 0;
    for (i, value) in current.iter().enumerate() {
        if *value > current[best] {
            best = i;
        }
    }
    current[best] -= total as i128;
    weights[best].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_behaviour_parses_back_from_its_name() {
        for b in Behaviour::ALL {
            assert_eq!(b.name().parse::<Behaviour>(), Ok(b));
        }
    }

    #[test]
    fn an_unknown_behaviour_names_the_value_and_lists_the_valid_ones() {
        let err = "flaky".parse::<Behaviour>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown behaviour \"flaky\"; valid behaviours are \
             ok, download-404, bad-checksum, boot-fails, silent, offline"
        );
    }

    #[test]
    fn a_mix_is_read_from_name_count_pairs() {
        assert_eq!(
            parse_mix("ok=16, silent=1,download-404=0"),
            Ok(vec![
                (Behaviour::Ok, 16),
                (Behaviour::Silent, 1),
                (Behaviour::Download404, 0)
            ])
        );
    }

    #[test]
    fn a_mix_with_errors_names_the_bad_entry() {
        assert_eq!(
            parse_mix("ok").unwrap_err().to_string(),
            "behaviour mix entry \"ok\" is not NAME=COUNT (e.g. ok=16)"
        );
        assert_eq!(
            parse_mix("ok=two").unwrap_err().to_string(),
            "behaviour mix entry \"ok=two\": \"two\" is not a whole number"
        );
        assert!(matches!(
            parse_mix("ok=1,slow=2"),
            Err(MixError::UnknownBehaviour { ref entry, .. }) if entry == "slow=2"
        ));
        assert_eq!(
            parse_mix("ok=1,ok=2"),
            Err(MixError::Duplicate {
                behaviour: Behaviour::Ok
            })
        );
        assert!(matches!(parse_mix("ok=0"), Err(MixError::NoWeight { .. })));
    }

    #[test]
    fn mix_matches_the_weights_exactly_within_each_block() {
        let weights = [(Behaviour::Ok, 16), (Behaviour::Silent, 1)];
        let fleet = mix(34, &weights);
        let silent = fleet.iter().filter(|b| **b == Behaviour::Silent).count();
        assert_eq!(silent, 2);
        assert_eq!(fleet.len(), 34);
    }

    #[test]
    fn mix_spreads_behaviours_instead_of_grouping_them() {
        let weights = [(Behaviour::Ok, 2), (Behaviour::BootFails, 2)];
        assert_eq!(
            mix(4, &weights),
            vec![
                Behaviour::Ok,
                Behaviour::BootFails,
                Behaviour::Ok,
                Behaviour::BootFails
            ]
        );
    }

    #[test]
    fn mix_is_deterministic() {
        let weights = [
            (Behaviour::Ok, 5),
            (Behaviour::Offline, 3),
            (Behaviour::Silent, 1),
        ];
        assert_eq!(mix(100, &weights), mix(100, &weights));
    }

    #[test]
    fn mix_without_weight_makes_every_device_ok() {
        assert_eq!(mix(3, &[]), vec![Behaviour::Ok; 3]);
    }
}
