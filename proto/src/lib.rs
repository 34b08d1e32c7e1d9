//! Protocol Buffers for Souk's gRPC services and the cluster envelope.
//!
//! Empty on purpose: the `.proto` files and their codegen arrive with the gRPC issue
//! (#6). The crate exists now so that the workspace layout of `DESIGN.md` is final and
//! later work only fills it.
