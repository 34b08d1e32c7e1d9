//! Cluster membership, the consistent-hash ring, the NATS mailbox transport and the
//! entity router.
//!
//! Empty on purpose: it is filled by the cluster work that follows the inventory issue.
//! The crate exists now so that the workspace layout is final.
