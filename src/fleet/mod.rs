//! The fleet protocol: how the nodes running one config at once decide who
//! applies each step, around any step ([`apply`]). The store it runs on is
//! [`crate::store`] (the operator's helper, its keys and its duties); the
//! steps know nothing of it beyond [`crate::step::Step::shared`],
//! [`crate::step::Step::writes_node_files`], [`crate::step::Step::follow`]
//! and [`crate::step::Step::take_over`].
//!
//! Without `[store]` the same entry point is the one-node protocol: a step
//! this node never checkpointed reads TFE first, and sends nothing when TFE
//! already holds it.

mod duty;

pub use duty::apply;
