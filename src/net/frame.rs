//! Frames: what travels on a connection, and the one decoder every byte from the network
//! goes through.
//!
//! On the wire a frame is a 4-byte big-endian length `L` followed by `L` bytes of body; the
//! body is the [postcard](https://docs.rs/postcard) encoding of a [`Frame`]. Postcard writes
//! an enum's variant index first, as a varint: for the few variants here that is one byte,
//! so the body's first byte is the frame type ([`Frame::type_of`]). A length above the
//! maximum is refused before anything is allocated; a type byte the decoder does not know,
//! a body that does not decode, or bytes left over after it are typed errors
//! ([`FrameError`]): the connection that sent them is closed, and the server keeps serving.

use std::io::{self, Read, Write};

use paxraft_impls::sm::{Request, StateMachine};
use paxraft_impls::NodeId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::runtime::Reply;

/// Largest frame body accepted or sent: 16 MiB, well above a full batch of appends (the
/// default batch is a few hundred commands) and a snapshot chunk, far below what a process
/// can afford to buffer per connection.
pub const MAX_FRAME: usize = 16 << 20;

/// Bytes of a frame's length prefix.
pub const HEADER: usize = 4;

/// Bytes of a handshake nonce.
pub const NONCE: usize = 16;

/// A cluster's identity: peers of another cluster are refused.
pub type ClusterId = String;

/// Everything a connection carries. `M` is the protocol's message type
/// ([`Replica::Msg`](paxraft_impls::Replica::Msg)), `S` the state machine whose requests and
/// answers ([`Reply`]) clients exchange.
///
/// The variant order is the wire's type byte: append new variants, never reorder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "M: Serialize", deserialize = "M: DeserializeOwned"))]
pub enum Frame<M, S: StateMachine> {
    /// Type 0, dialer to acceptor, first frame of a peer connection: who dials, in which
    /// cluster, a fresh nonce the acceptor must prove the secret over, and the dialer's
    /// session timeout.
    Hello {
        /// The cluster the dialer belongs to.
        cluster: ClusterId,
        /// The dialer's node id.
        node: NodeId,
        /// The dialer's challenge to the acceptor.
        nonce: [u8; NONCE],
        /// The dialer's session timeout ([`RuntimeConfig::session_timeout`](crate::runtime::RuntimeConfig::session_timeout)):
        /// part of the replicated state machine, so peers that differ in it are refused.
        session_timeout: u64,
    },
    /// Type 1, acceptor to dialer: the acceptor's id, its proof over the dialer's nonce
    /// (empty without a secret), and its own challenge.
    Challenge {
        /// The acceptor's node id.
        node: NodeId,
        /// HMAC over the dialer's nonce (see [`super::auth`]).
        proof: Vec<u8>,
        /// The acceptor's challenge to the dialer.
        nonce: [u8; NONCE],
    },
    /// Type 2, dialer to acceptor: the dialer's proof over the acceptor's nonce. After it
    /// both sides are admitted peers and only [`Frame::Msg`] follows.
    Proof {
        /// HMAC over the acceptor's nonce (empty without a secret).
        proof: Vec<u8>,
    },
    /// Type 3: a protocol message and its sender (which must be the admitted peer).
    Msg {
        /// The sender.
        from: NodeId,
        /// The message.
        msg: M,
    },
    /// Type 4, client to server, first frame of a client connection and every one after:
    /// requests, in the client's order (one client per connection).
    Request {
        /// The requests.
        reqs: Vec<Request<S::Op>>,
    },
    /// Type 5, server to client: answers, in the order the server produced them.
    Reply {
        /// The answers.
        replies: Vec<Reply<S>>,
    },
}

/// Number of frame types ([`Frame`]'s variants).
pub const FRAME_TYPES: u8 = 6;

impl<M, S: StateMachine> Frame<M, S> {
    /// The frame's type byte (its variant index).
    pub fn type_of(&self) -> u8 {
        match self {
            Frame::Hello { .. } => 0,
            Frame::Challenge { .. } => 1,
            Frame::Proof { .. } => 2,
            Frame::Msg { .. } => 3,
            Frame::Request { .. } => 4,
            Frame::Reply { .. } => 5,
        }
    }
}

/// Why bytes from the network are not a frame. Any of them closes the connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the maximum.
    #[error("oversized frame: {len} bytes, the maximum is {max}")]
    Oversized {
        /// The announced length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A frame of length zero (it has no type byte).
    #[error("empty frame")]
    Empty,
    /// A type byte no frame has.
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    /// The body does not decode as a frame of its type.
    #[error("malformed frame of type {kind}: {error}")]
    Malformed {
        /// The type byte.
        kind: u8,
        /// What postcard said.
        error: postcard::Error,
    },
    /// The body decoded with bytes left over.
    #[error("malformed frame of type {kind}: {extra} bytes after its end")]
    Trailing {
        /// The type byte.
        kind: u8,
        /// How many bytes were left.
        extra: usize,
    },
    /// The connection failed or closed (mid-frame: a truncated frame).
    #[error("connection: {0}")]
    Io(#[from] io::Error),
}

impl FrameError {
    /// Whether the peer sent bytes that are not a frame (as opposed to the connection
    /// failing): what the rejected-frame counter counts.
    pub fn is_bad_frame(&self) -> bool {
        !matches!(self, FrameError::Io(_))
    }
}

/// Decode one frame body (the bytes after the length prefix).
pub fn decode<M, S>(body: &[u8]) -> Result<Frame<M, S>, FrameError>
where
    M: DeserializeOwned,
    S: StateMachine,
{
    let &kind = body.first().ok_or(FrameError::Empty)?;
    // A varint's continuation bit set, or an index past the last variant: not ours.
    if kind >= FRAME_TYPES {
        return Err(FrameError::UnknownType(kind));
    }
    let (frame, rest) =
        postcard::take_from_bytes(body).map_err(|error| FrameError::Malformed { kind, error })?;
    if !rest.is_empty() {
        return Err(FrameError::Trailing {
            kind,
            extra: rest.len(),
        });
    }
    Ok(frame)
}

/// Split the first whole frame off `buf` (prefix and body): `Ok(None)` if `buf` holds less
/// than one frame, else the body and the bytes the frame took. Refuses an oversized length
/// as soon as the prefix is in.
pub fn split(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(prefix) = buf.get(..HEADER) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(prefix.try_into().expect("four bytes")) as usize;
    if len > max {
        return Err(FrameError::Oversized { len, max });
    }
    Ok(buf
        .get(HEADER..HEADER + len)
        .map(|body| (body, HEADER + len)))
}

/// Append `frame`, length prefix first, to `out`. An encoded frame above [`MAX_FRAME`] is an
/// error (and `out` is left as it was): the peer would refuse it.
pub fn encode<M, S>(frame: &Frame<M, S>, out: &mut Vec<u8>) -> io::Result<()>
where
    M: Serialize,
    S: StateMachine,
{
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    let mut buf = std::mem::take(out);
    buf = match postcard::to_extend(frame, buf) {
        Ok(buf) => buf,
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    };
    *out = buf;
    let len = out.len() - start - HEADER;
    if len > MAX_FRAME {
        out.truncate(start);
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the maximum of {MAX_FRAME}"),
        ));
    }
    out[start..start + HEADER].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Read one frame from a blocking reader into `buf` (reused between calls) and decode it.
pub fn read<M, S>(
    r: &mut impl Read,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<Frame<M, S>, FrameError>
where
    M: DeserializeOwned,
    S: StateMachine,
{
    let mut prefix = [0u8; HEADER];
    r.read_exact(&mut prefix)?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(FrameError::Oversized { len, max });
    }
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf)?;
    decode(buf)
}

/// Encode and write one frame, and flush (for the handshake; the transport's writers batch).
pub fn write<M, S>(w: &mut impl Write, frame: &Frame<M, S>) -> io::Result<()>
where
    M: Serialize,
    S: StateMachine,
{
    let mut buf = Vec::new();
    encode(frame, &mut buf)?;
    w.write_all(&buf)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Cmd;
    use paxraft_impls::raft::RaftMsg;
    use paxraft_impls::sm::{Kv, KvOp, KvOutput};
    use proptest::prelude::*;

    type F = Frame<RaftMsg<Cmd<Kv>>, Kv>;

    fn samples() -> Vec<F> {
        vec![
            Frame::Hello {
                cluster: "c".into(),
                node: NodeId(1),
                nonce: [7; NONCE],
                session_timeout: 100_000,
            },
            Frame::Challenge {
                node: NodeId(2),
                proof: vec![1; 32],
                nonce: [9; NONCE],
            },
            Frame::Proof { proof: vec![3; 32] },
            Frame::Msg {
                from: NodeId(0),
                msg: RaftMsg::RequestVote {
                    term: 3,
                    last_index: 4,
                    last_term: 2,
                    pre_vote: false,
                },
            },
            Frame::Request {
                reqs: vec![Request {
                    client: 5,
                    seq: 1,
                    acked: 0,
                    op: KvOp::Put(1, vec![1, 2, 3]),
                }],
            },
            Frame::Reply {
                replies: vec![
                    Reply::Done {
                        seq: 1,
                        out: Ok(KvOutput::Written),
                    },
                    Reply::Redirect {
                        seq: 2,
                        leader: Some(NodeId(1)),
                    },
                ],
            },
        ]
    }

    fn encoded(f: &F) -> Vec<u8> {
        let mut v = Vec::new();
        encode(f, &mut v).unwrap();
        v
    }

    #[test]
    fn every_frame_round_trips_and_its_first_body_byte_is_its_type() {
        let all = samples();
        assert_eq!(all.len(), FRAME_TYPES as usize);
        for f in all {
            let bytes = encoded(&f);
            let (body, used) = split(&bytes, MAX_FRAME).unwrap().unwrap();
            assert_eq!(used, bytes.len());
            assert_eq!(body[0], f.type_of());
            assert_eq!(decode::<_, _>(body).ok(), Some(f.clone()));
            let mut buf = Vec::new();
            let read_back: F = read(&mut &bytes[..], &mut buf, MAX_FRAME).unwrap();
            assert_eq!(read_back, f);
        }
    }

    #[test]
    fn the_decoder_names_what_is_wrong() {
        let bytes = encoded(&samples()[3]);
        // Announces more than the maximum: refused from the prefix alone.
        assert!(matches!(
            split(&[0xff, 0xff, 0xff, 0xff], MAX_FRAME),
            Err(FrameError::Oversized {
                len: 0xffff_ffff,
                ..
            })
        ));
        assert!(matches!(
            read::<RaftMsg<Cmd<Kv>>, Kv>(&mut &bytes[..], &mut Vec::new(), 3),
            Err(FrameError::Oversized { max: 3, .. })
        ));
        assert!(matches!(decode::<(), Kv>(&[]), Err(FrameError::Empty)));
        assert!(matches!(
            decode::<(), Kv>(&[FRAME_TYPES]),
            Err(FrameError::UnknownType(6))
        ));
        // A Msg frame cut short inside its message.
        let body = &bytes[HEADER..bytes.len() - 1];
        assert!(matches!(
            decode::<RaftMsg<Cmd<Kv>>, Kv>(body),
            Err(FrameError::Malformed { kind: 3, .. })
        ));
        let mut longer = bytes[HEADER..].to_vec();
        longer.push(0);
        assert!(matches!(
            decode::<RaftMsg<Cmd<Kv>>, Kv>(&longer),
            Err(FrameError::Trailing { kind: 3, extra: 1 })
        ));
        // A truncated stream is a connection error, not a bad frame.
        let cut = read::<RaftMsg<Cmd<Kv>>, Kv>(
            &mut &bytes[..bytes.len() - 1],
            &mut Vec::new(),
            MAX_FRAME,
        )
        .unwrap_err();
        assert!(!cut.is_bad_frame(), "{cut}");
    }

    /// Decode every frame in `bytes` as a connection would: never a panic, and every
    /// outcome a frame or a typed error; a frame decoded re-encodes to its bytes' meaning.
    fn decode_all(bytes: &[u8]) -> Result<usize, FrameError> {
        let mut at = 0;
        let mut frames = 0;
        while let Some((body, used)) = split(&bytes[at..], 1 << 16)? {
            let f: F = decode(body)?;
            assert_eq!(decode::<_, _>(&encoded(&f)[HEADER..]).ok(), Some(f));
            frames += 1;
            at += used;
        }
        Ok(frames)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_all(&bytes);
            // Also as a body with a valid type byte, where postcard does the work.
            let _ = decode::<RaftMsg<Cmd<Kv>>, Kv>(&bytes);
        }

        #[test]
        fn mutated_frames_never_panic_the_decoder(
            which in 0..FRAME_TYPES as usize,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
        ) {
            let mut bytes = encoded(&samples()[which]);
            for (at, xor) in flips {
                let i = at % bytes.len();
                bytes[i] ^= xor;
            }
            let _ = decode_all(&bytes);
            bytes.truncate(cut % (bytes.len() + 1));
            let _ = decode_all(&bytes);
        }
    }
}
