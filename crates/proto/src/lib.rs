//! The `sankalpa.v1` wire types and gRPC stubs, generated from `proto/` by `build.rs`.
//! Nothing here is written by hand: services convert these types into their own at the edge.

pub mod v1 {
    tonic::include_proto!("sankalpa.v1");
}

/// The encoded descriptor set of every `sankalpa.v1` file, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("sankalpa_descriptor");
