//! The phases of a deployment as its rows name them (`deploy_phase`), and the order of a
//! round's two: one home for the words that the run writes and the summary reads.

use std::fmt;

/// Which phase a row measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The role served while the other servers stay resident and idle.
    Alone,
    /// Every role served at once.
    Together,
    /// A WARM role's start with its model's pages evicted.
    ColdStart,
    /// A WARM role's start with its model's pages cached.
    WarmStart,
}

impl Phase {
    /// The word rows carry in `deploy_phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Alone => "alone",
            Phase::Together => "together",
            Phase::ColdStart => "cold start",
            Phase::WarmStart => "warm start",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The phases of a round: alone first in odd rounds, together first in even ones.
pub fn phases_of(round: u32) -> [Phase; 2] {
    match round % 2 {
        1 => [Phase::Alone, Phase::Together],
        _ => [Phase::Together, Phase::Alone],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_alternate_the_order_of_their_phases() {
        assert_eq!(phases_of(1), [Phase::Alone, Phase::Together]);
        assert_eq!(phases_of(2), [Phase::Together, Phase::Alone]);
        assert_eq!(phases_of(3), [Phase::Alone, Phase::Together]);
    }
}
