//! Durable [`StateStore`](crate::StateStore) implementations.

pub(crate) mod table;
