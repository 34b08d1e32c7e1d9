//! The crate's error type: what can stop a node from joining or keeping its place.

/// Why a cluster operation failed. Messages are lowercase and name what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("invalid cluster setting {setting}: {reason}")]
    InvalidSetting {
        setting: &'static str,
        reason: String,
    },
    #[error(
        "the cluster uses {cluster} shards but this node is configured with {configured}; \
         the shard count is fixed for a deployment, so this node does not join"
    )]
    ShardCountMismatch { cluster: u32, configured: u32 },
    #[error(
        "the cluster's members host entities of kinds {cluster} but this node hosts {hosted}; \
         every member of a cluster runs the same services, so this node does not join \
         (give each clustered set of services a namespace of its own: cluster.namespace)"
    )]
    EntityKindsMismatch { cluster: String, hosted: String },
    #[error(
        "bucket {bucket} cannot hold per-key ttls (nats-server >= 2.11 with JetStream \
         is required): {detail}"
    )]
    BucketUnsupported { bucket: String, detail: String },
    #[error("corrupt record under {key} in bucket {bucket}: {detail}")]
    CorruptRecord {
        bucket: String,
        key: String,
        detail: String,
    },
    #[error("another process took over node id {node}")]
    Displaced { node: String },
    #[error("nats ({action}): {detail}")]
    Nats {
        action: &'static str,
        detail: String,
    },
}

impl ClusterError {
    pub(crate) fn nats(action: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Nats {
            action,
            detail: error.to_string(),
        }
    }
}
