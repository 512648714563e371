//! A value hashed once, for the parts of a state that are large and rarely change.

use std::hash::{Hash, Hasher};

/// A value that hashes as a fingerprint computed when it was built. The durable image is
/// hashed twice per state (in the server's state and in stateright's storage vector) and
/// rarely changes: hashing it once per change keeps states cheap to fingerprint. Stateright
/// itself identifies states by 64-bit fingerprints, so this adds no new kind of collision.
#[derive(Clone, Debug)]
pub struct Hashed<T> {
    fp: u64,
    value: T,
}

impl<T: Hash> Hashed<T> {
    /// Wrap `value`, fingerprinting it.
    pub fn new(value: T) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        value.hash(&mut h);
        Hashed {
            fp: h.finish(),
            value,
        }
    }
}

impl<T> std::ops::Deref for Hashed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: PartialEq> PartialEq for Hashed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.fp == other.fp && self.value == other.value
    }
}
impl<T: Eq> Eq for Hashed<T> {}
impl<T> Hash for Hashed<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.fp);
    }
}
