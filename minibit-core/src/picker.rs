//! Piece selection (SKELETON: the rarest-first picker is filled in by the swarm-brain work).

/// Which piece-selection strategy to use (rarest first is the default; the
/// others exist so the simulator can show what rarest-first buys).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum PickerStrategy {
    /// Rarest first with random tie-break (BEP 3 recommendation).
    #[default]
    RarestFirst,
    /// Uniformly random among the pieces the peer has and we lack.
    Random,
    /// Lowest index first.
    Sequential,
}
