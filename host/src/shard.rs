//! `--shard I/N`: a deterministic partition of a stage's files for N workers that cannot
//! talk to each other (a Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` + `--shard-count`).
//!
//! A file belongs to shard `h(key) mod N`, where `h` is the first 8 bytes of SHA-256 of its
//! object key: it depends on nothing but the key, so shards that list the stage at
//! different moments still agree, and the N shards together cover every file exactly once.

use sha2::{Digest, Sha256};

/// Environment variable a Kubernetes Indexed Job sets to the pod's index.
pub const JOB_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";

/// Why a shard was refused (a usage error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("expected I/N (e.g. 0/4), got `{0}`")]
    NotIOverN(String),
    #[error("shard index `{0}` is not a number")]
    IndexNotANumber(String),
    #[error("shard count `{0}` is not a number")]
    CountNotANumber(String),
    #[error("the shard count must be at least 1")]
    NoShards,
    #[error("shard index {index} is not below the shard count {count} (indices are 0-based)")]
    IndexTooHigh { index: u64, count: u64 },
    #[error(
        "--shard-count needs the pod index in {JOB_COMPLETION_INDEX} (set by a Kubernetes Indexed Job); use --shard I/N elsewhere"
    )]
    NoJobIndex,
    #[error("{JOB_COMPLETION_INDEX}=`{0}` is not a number")]
    JobIndexNotANumber(String),
}

/// One shard of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// Parses `I/N` (0 ≤ I < N).
    pub fn parse(text: &str) -> Result<Shard, ShardError> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| ShardError::NotIOverN(text.to_owned()))?;
        let index = i
            .trim()
            .parse()
            .map_err(|_| ShardError::IndexNotANumber(i.to_owned()))?;
        let count = n
            .trim()
            .parse()
            .map_err(|_| ShardError::CountNotANumber(n.to_owned()))?;
        Shard::new(index, count)
    }

    pub fn new(index: u64, count: u64) -> Result<Shard, ShardError> {
        if count == 0 {
            return Err(ShardError::NoShards);
        }
        if index >= count {
            return Err(ShardError::IndexTooHigh { index, count });
        }
        Ok(Shard { index, count })
    }

    /// The shard of a Kubernetes Indexed Job pod: its index from `JOB_COMPLETION_INDEX`.
    pub fn from_job_index(count: u64, env: Option<String>) -> Result<Shard, ShardError> {
        let value = env.ok_or(ShardError::NoJobIndex)?;
        let index = value
            .trim()
            .parse()
            .map_err(|_| ShardError::JobIndexNotANumber(value.clone()))?;
        Shard::new(index, count)
    }

    /// Whether the object `key` belongs to this shard.
    pub fn owns(&self, key: &str) -> bool {
        let digest = Sha256::digest(key.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) % self.count == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_key_exactly_once() {
        let keys: Vec<String> = (0..1000)
            .map(|n| format!("unload/customers/data_0_{n}_0.snappy.parquet"))
            .collect();
        for count in [1, 2, 3, 7] {
            let shards: Vec<Shard> = (0..count).map(|i| Shard::new(i, count).unwrap()).collect();
            let mut sizes = vec![0; count as usize];
            for key in &keys {
                let owners: Vec<_> = shards.iter().filter(|s| s.owns(key)).collect();
                assert_eq!(owners.len(), 1, "{key} in {count} shards");
                sizes[owners[0].index as usize] += 1;
            }
            // Roughly even: every shard gets at least half its fair share.
            assert!(
                sizes.iter().all(|s| *s * 2 * count as usize >= 1000),
                "{sizes:?}"
            );
        }
    }

    #[test]
    fn bad_shards_are_refused_with_a_reason() {
        assert_eq!(Shard::parse("1/4"), Ok(Shard { index: 1, count: 4 }));
        let refused = |shard: Result<Shard, ShardError>| shard.unwrap_err().to_string();
        assert!(refused(Shard::parse("4/4")).contains("not below"));
        assert!(refused(Shard::parse("0/0")).contains("at least 1"));
        assert!(refused(Shard::parse("x")).contains("I/N"));
        assert!(refused(Shard::from_job_index(3, None)).contains("JOB_COMPLETION_INDEX"));
        assert_eq!(
            refused(Shard::from_job_index(3, Some("x".into()))),
            "JOB_COMPLETION_INDEX=`x` is not a number"
        );
        assert_eq!(
            Shard::from_job_index(3, Some("2".into())),
            Ok(Shard { index: 2, count: 3 })
        );
    }
}
