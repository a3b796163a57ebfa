//! AWS adapters of the workflow ports: IoT Jobs ([`IotJobs`]), the DynamoDB task-token table
//! ([`DynamoTokenStore`]), Step Functions task callbacks ([`SfnCallbacks`]), IoT Data publishing
//! ([`IotDataChannel`]) and firmware images in S3 with presigned URLs ([`S3Artifacts`]).
//!
//! Only the Lambda functions depend on this crate; the local `wme` binary never builds the SDK.

pub mod artifacts;
pub mod callbacks;
pub mod channel;
pub mod endpoints;
pub mod jobs;
pub mod tokens;

pub use artifacts::S3Artifacts;
pub use callbacks::SfnCallbacks;
pub use channel::IotDataChannel;
pub use jobs::IotJobs;
pub use tokens::DynamoTokenStore;
