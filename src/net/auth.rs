//! Peer admission: the handshake that makes a connection a peer link.
//!
//! The dialer (always the lower node id of the pair, so each pair has one connection) sends
//! a `Hello` ([`Frame`](super::frame::Frame)) with its cluster id, node id, session timeout
//! and a fresh nonce. The acceptor checks the cluster id, the session timeout (part of the
//! replicated state machine: peers must share it) and that the node id is a configured peer
//! that dials it, and answers a `Challenge`: its own id, its proof over the dialer's nonce, and
//! its own nonce. The dialer checks the acceptor is the peer it dialed and its proof, and
//! answers a `Proof` over the acceptor's nonce. With a shared secret a proof is
//! HMAC-SHA256(secret, role ‖ cluster ‖ prover ‖ verifier ‖ nonce): each side proves it holds
//! the secret over a nonce it did not choose, so a recorded handshake cannot be replayed and
//! neither side can be impersonated. Without a secret proofs are empty and admission checks
//! the ids alone (a lab setting: anyone who can reach the port and knows the ids is let in).

use hmac::{Hmac, Mac};
use paxraft_impls::NodeId;
use rand::RngCore;
use sha2::Sha256;

use super::frame::NONCE;

/// Which side of the handshake a proof is for (so a proof of one side is never valid for
/// the other).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Side {
    /// The node that dialed.
    Dialer,
    /// The node that accepted.
    Acceptor,
}

/// The shared secret of a cluster, or none.
#[derive(Clone, Default)]
pub struct Secret(Option<Vec<u8>>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret itself.
        f.write_str(if self.0.is_some() {
            "Secret(set)"
        } else {
            "Secret(none)"
        })
    }
}

impl Secret {
    /// No secret: admission checks the cluster and node ids only.
    pub fn none() -> Self {
        Secret(None)
    }

    /// A shared secret (an empty one counts as none).
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        let s = secret.as_ref();
        Secret((!s.is_empty()).then(|| s.to_vec()))
    }

    /// The MAC over everything a proof covers, `nonce` last; none without a secret.
    fn mac_over(
        &self,
        side: Side,
        cluster: &str,
        prover: NodeId,
        verifier: NodeId,
        nonce: &[u8; NONCE],
    ) -> Option<Hmac<Sha256>> {
        let key = self.0.as_ref()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(match side {
            Side::Dialer => b"paxraft dialer\0",
            Side::Acceptor => b"paxraft accept\0",
        });
        // Length-prefixed so that no two (cluster, ids) encode alike.
        mac.update(&(cluster.len() as u64).to_be_bytes());
        mac.update(cluster.as_bytes());
        mac.update(&[prover.0, verifier.0]);
        mac.update(nonce);
        Some(mac)
    }

    /// The proof `prover` gives `verifier` over `nonce` (empty without a secret).
    pub fn prove(
        &self,
        side: Side,
        cluster: &str,
        prover: NodeId,
        verifier: NodeId,
        nonce: &[u8; NONCE],
    ) -> Vec<u8> {
        self.mac_over(side, cluster, prover, verifier, nonce)
            .map_or_else(Vec::new, |mac| mac.finalize().into_bytes().to_vec())
    }

    /// Whether `proof` is `prover`'s proof over `nonce` (compared in constant time). Without
    /// a secret only an empty proof passes.
    pub fn verify(
        &self,
        side: Side,
        cluster: &str,
        prover: NodeId,
        verifier: NodeId,
        nonce: &[u8; NONCE],
        proof: &[u8],
    ) -> bool {
        self.mac_over(side, cluster, prover, verifier, nonce)
            .map_or(proof.is_empty(), |mac| mac.verify_slice(proof).is_ok())
    }
}

/// A fresh nonce from the operating system's generator (through `rand`'s thread RNG, seeded
/// from it).
pub fn nonce() -> [u8; NONCE] {
    let mut n = [0u8; NONCE];
    rand::thread_rng().fill_bytes(&mut n);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_passes_only_for_its_secret_side_ids_cluster_and_nonce() {
        let s = Secret::new("s3cret");
        let n = nonce();
        let p = s.prove(Side::Dialer, "c", NodeId(0), NodeId(1), &n);
        assert!(s.verify(Side::Dialer, "c", NodeId(0), NodeId(1), &n, &p));
        assert!(!Secret::new("other").verify(Side::Dialer, "c", NodeId(0), NodeId(1), &n, &p));
        assert!(!Secret::none().verify(Side::Dialer, "c", NodeId(0), NodeId(1), &n, &p));
        assert!(!s.verify(Side::Acceptor, "c", NodeId(0), NodeId(1), &n, &p));
        assert!(!s.verify(Side::Dialer, "d", NodeId(0), NodeId(1), &n, &p));
        assert!(!s.verify(Side::Dialer, "c", NodeId(2), NodeId(1), &n, &p));
        assert!(!s.verify(Side::Dialer, "c", NodeId(0), NodeId(1), &nonce(), &p));
        assert!(!s.verify(Side::Dialer, "c", NodeId(0), NodeId(1), &n, &[]));
        // Without a secret, proofs are empty and only empty proofs pass.
        let none = Secret::none();
        assert!(none
            .prove(Side::Dialer, "c", NodeId(0), NodeId(1), &n)
            .is_empty());
        assert!(none.verify(Side::Dialer, "c", NodeId(0), NodeId(1), &n, &[]));
        assert_eq!(format!("{s:?}"), "Secret(set)");
    }
}
