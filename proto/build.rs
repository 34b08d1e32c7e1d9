//! Compiles `proto/souk/v1/*.proto` with protox (a protobuf compiler written in Rust, so
//! building needs no system `protoc`) and generates the prost messages and tonic
//! clients into OUT_DIR, the tonic servers into OUT_DIR/servers. The encoded descriptor set is kept for gRPC
//! server reflection.

use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/souk/v1/common.proto",
    "proto/souk/v1/user.proto",
    "proto/souk/v1/auth.proto",
    "proto/souk/v1/product.proto",
    "proto/souk/v1/inventory.proto",
    "proto/souk/v1/order.proto",
    "proto/souk/v1/cart.proto",
    "proto/souk/v1/email.proto",
    "proto/souk/v1/shipping.proto",
    "proto/souk/v1/cluster.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("souk_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    // Messages and clients with prost's codec; servers apart, with the codec that
    // answers a malformed request INVALID_ARGUMENT (`src/codec.rs`), naming the messages
    // of the first pass instead of generating them again.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(descriptors.clone())?;
    let servers = out_dir.join("servers");
    std::fs::create_dir_all(&servers)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .codec_path("crate::codec::ServerCodec")
        .extern_path(".souk.v1", "crate::v1")
        .out_dir(&servers)
        .compile_fds(descriptors)?;
    Ok(())
}
