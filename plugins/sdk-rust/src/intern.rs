//! Names (entity types, property names) interned per batch: [`Interner`].

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::packed::renew;

/// Names (entity types, property names) interned per batch.
///
/// A name is usually a `&'static str` literal, the same pointer every time: a small cache
/// keyed by pointer and length (confirmed by comparing the text, so any `&str` is safe)
/// answers those; other names are found by content, linearly while there are few and
/// through a hash map beyond that.
#[derive(Default)]
pub(crate) struct Interner {
    names: Vec<String>,
    recent: Vec<(usize, usize, u32)>,
    map: HashMap<Box<str>, u32, BuildHasherDefault<FxHasher>>,
}

const RECENT: usize = 32;
const LINEAR: usize = 16;

impl Interner {
    #[inline]
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        let key = (s.as_ptr() as usize, s.len());
        for &(p, l, id) in &self.recent {
            if (p, l) == key && same(self.names[id as usize].as_bytes(), s.as_bytes()) {
                return id;
            }
        }
        self.intern_slow(s, key)
    }

    #[cold]
    fn intern_slow(&mut self, s: &str, key: (usize, usize)) -> u32 {
        let found = if self.names.len() <= LINEAR {
            self.names.iter().position(|n| n == s).map(|i| i as u32)
        } else {
            self.map.get(s).copied()
        };
        let id = found.unwrap_or_else(|| {
            let id = self.names.len() as u32;
            self.names.push(s.to_owned());
            if self.names.len() == LINEAR + 1 {
                for (i, n) in self.names.iter().enumerate() {
                    self.map.insert(n.as_str().into(), i as u32);
                }
            } else if self.names.len() > LINEAR + 1 {
                self.map.insert(s.into(), id);
            }
            id
        });
        if self.recent.len() < RECENT {
            self.recent.push((key.0, key.1, id));
        } else {
            self.recent[(key.0 ^ key.1) % RECENT] = (key.0, key.1, id);
        }
        id
    }

    pub(crate) fn take(&mut self) -> Vec<String> {
        self.recent.clear();
        self.map.clear();
        renew(&mut self.names)
    }
}

/// Byte equality, compared inline 8 bytes at a time: names are short, and the call to
/// `memcmp` that `==` makes cost 2-3 % of a whole run's CPU (6 names per entity).
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut left = a.chunks_exact(8);
    let mut right = b.chunks_exact(8);
    let words = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or_default());
    if !left
        .by_ref()
        .zip(right.by_ref())
        .all(|(x, y)| words(x) == words(y))
    {
        return false;
    }
    left.remainder()
        .iter()
        .zip(right.remainder())
        .all(|(x, y)| x == y)
}

/// The Firefox/rustc hash: fast for short keys, fine for a handful of names.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or_default());
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_compares_every_byte() {
        let text = b"abcdefghijklmnopqrstuvwxyz";
        for len in 0..text.len() {
            let a = &text[..len];
            let copy = a.to_vec(); // equal bytes at another address
            assert!(same(a, &copy));
            assert!(!same(a, &text[..len + 1]));
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 0x20;
                assert!(!same(a, &b), "{len} {at}");
            }
        }
    }

    #[test]
    fn interning_reuses_names_by_pointer_and_content() {
        let mut i = Interner::default();
        let a = i.intern("name");
        assert_eq!(i.intern("name"), a);
        let owned = String::from("name");
        assert_eq!(i.intern(&owned), a);
        let b = i.intern("email");
        assert_ne!(a, b);
        // Many distinct names: past the linear range, through the map.
        let many: Vec<String> = (0..100).map(|k| format!("p{k}")).collect();
        let ids: Vec<u32> = many.iter().map(|n| i.intern(n)).collect();
        let again: Vec<u32> = many.iter().map(|n| i.intern(&n.clone())).collect();
        assert_eq!(ids, again);
        assert_eq!(i.names.len(), 102);
        assert_eq!(i.intern("email"), b);
        // A reused buffer (same pointer, new text) is not mistaken for the old name.
        let mut buf = String::with_capacity(8);
        buf.push_str("aaaa");
        let x = i.intern(&buf);
        buf.clear();
        buf.push_str("bbbb");
        let y = i.intern(&buf);
        assert_ne!(x, y);
        assert_eq!(i.names[y as usize], "bbbb");
        let names = i.take();
        assert_eq!(names.len(), 104);
        assert_eq!(i.intern("z"), 0);
    }
}
