//! `--shard I/N`: a deterministic partition of a stage's files for N workers that cannot
//! talk to each other (a Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` + `--shard-count`).
//!
//! A file belongs to shard `h(key) mod N`, where `h` is the first 8 bytes of SHA-256 of its
//! object key: it depends on nothing but the key, so shards that list the stage at
//! different moments still agree, and the N shards together cover every file exactly once.

use sha2::{Digest, Sha256};

/// Environment variable a Kubernetes Indexed Job sets to the pod's index.
pub const JOB_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";

/// One shard of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// Parses `I/N` (0 ≤ I < N).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("expected I/N (e.g. 0/4), got `{text}`"))?;
        let index = i
            .trim()
            .parse()
            .map_err(|_| format!("shard index `{i}` is not a number"))?;
        let count = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count `{n}` is not a number"))?;
        Shard::new(index, count)
    }

    pub fn new(index: u64, count: u64) -> Result<Shard, String> {
        if count == 0 {
            return Err("the shard count must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the shard count {count} (indices are 0-based)"
            ));
        }
        Ok(Shard { index, count })
    }

    /// The shard of a Kubernetes Indexed Job pod: its index from `JOB_COMPLETION_INDEX`.
    pub fn from_job_index(count: u64, env: Option<String>) -> Result<Shard, String> {
        let value = env.ok_or_else(|| {
            format!("--shard-count needs the pod index in {JOB_COMPLETION_INDEX} (set by a Kubernetes Indexed Job); use --shard I/N elsewhere")
        })?;
        let index = value
            .trim()
            .parse()
            .map_err(|_| format!("{JOB_COMPLETION_INDEX}=`{value}` is not a number"))?;
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
        assert!(Shard::parse("4/4").unwrap_err().contains("not below"));
        assert!(Shard::parse("0/0").unwrap_err().contains("at least 1"));
        assert!(Shard::parse("x").unwrap_err().contains("I/N"));
        assert!(
            Shard::from_job_index(3, None)
                .unwrap_err()
                .contains("JOB_COMPLETION_INDEX")
        );
        assert_eq!(
            Shard::from_job_index(3, Some("2".into())),
            Ok(Shard { index: 2, count: 3 })
        );
    }
}
