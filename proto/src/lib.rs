//! The examreg gRPC contracts: generated messages, clients and servers, plus the encoded file
//! descriptor set that services hand to the reflection service, and the conversions between
//! the wire and the domain (`convert`).
#![allow(unreachable_pub, clippy::wildcard_enum_match_arm)]

/// Encoded `FileDescriptorSet` of every examreg proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/examreg_descriptor.bin"));

pub mod convert;

pub mod biometrics {
    pub mod v1 {
        tonic::include_proto!("examreg.biometrics.v1");
    }
}

pub mod identity {
    pub mod v1 {
        tonic::include_proto!("examreg.identity.v1");
    }
}

pub mod onboarding {
    pub mod v1 {
        tonic::include_proto!("examreg.onboarding.v1");
    }
}

pub mod profile {
    pub mod v1 {
        tonic::include_proto!("examreg.profile.v1");
    }
}

pub mod retention {
    pub mod v1 {
        tonic::include_proto!("examreg.retention.v1");
    }
}

pub mod verification {
    pub mod v1 {
        tonic::include_proto!("examreg.verification.v1");
    }
}
