//! Souk's gRPC contract: the messages, clients and servers generated from
//! `proto/souk/v1/*.proto` (never edit the generated code; change the `.proto`), and the
//! cluster's NATS envelope and KV records (`cluster.proto`, plain messages, no service).

#![allow(clippy::all, clippy::pedantic)]

pub mod codec;

pub mod v1 {
    tonic::include_proto!("souk.v1");
    include!(concat!(env!("OUT_DIR"), "/servers/souk.v1.rs"));
}

/// The encoded `FileDescriptorSet` of every Souk service, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("souk_descriptor");
