//! Generated protobuf and gRPC types. One module per `.proto` package, and
//! [`events`]: the Kafka topics and event types.

pub mod common {
    pub mod v1 {
        tonic::include_proto!("messenger.common.v1");
    }
}

pub mod users {
    pub mod v1 {
        tonic::include_proto!("messenger.users.v1");
    }
}

pub mod groups {
    pub mod v1 {
        tonic::include_proto!("messenger.groups.v1");
    }
}

pub mod messages {
    pub mod v1 {
        tonic::include_proto!("messenger.messages.v1");
    }
}

pub mod media {
    pub mod v1 {
        tonic::include_proto!("messenger.media.v1");
    }
}

pub mod notifier {
    pub mod v1 {
        tonic::include_proto!("messenger.notifier.v1");
    }
}

pub mod presence {
    pub mod v1 {
        tonic::include_proto!("messenger.presence.v1");
    }
}

pub mod events;

pub use events::Topic;
/// Every contract above as an encoded `FileDescriptorSet`, for gRPC
/// server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

pub use prost;
pub use prost_types;
