//! The promotion state machine (pure).

/// An event that makes no sense in the promotion's current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot apply {event} to a promotion that is {state}: {reason}")]
pub struct TransitionError {
    /// The state, as a phrase (`deploying to staging`).
    pub state: String,
    /// The event, as a phrase.
    pub event: String,
    /// Why not.
    pub reason: String,
}
