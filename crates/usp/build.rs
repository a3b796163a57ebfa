//! Compiles the TR-369 USP 1.3 schemas in `proto/` to Rust with protox (a pure-Rust protobuf
//! compiler, so no `protoc` is needed) and prost-build.

use std::path::PathBuf;

const PROTOS: [&str; 2] = ["usp-record-1-3.proto", "usp-msg-1-3.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for file in PROTOS {
        println!("cargo:rerun-if-changed={}", proto_dir.join(file).display());
    }

    let descriptors = protox::compile(PROTOS, [&proto_dir])?;
    let mut config = prost_build::Config::new();
    // Sorted maps make encoding deterministic, so equal messages give equal bytes.
    config.btree_map(["."]);
    // Operate carries the download password in input_args; its Debug is written by hand
    // in `pb.rs` so that the password never reaches a log.
    config.skip_debug(["usp.Operate"]);
    config.compile_fds(descriptors)?;
    Ok(())
}
