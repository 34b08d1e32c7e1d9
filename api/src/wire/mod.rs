//! What crosses the wire between Souk processes: the domain error as a gRPC status
//! (and back), and the inventory's commands and refusals as protobuf.

pub mod inventory;
pub mod status;
