//! The RTMP handshake, both sides, with the random bytes passed in.
//!
//! Two flavours exist. The *simple* handshake of the RTMP specification (§5.2) echoes the
//! peer's random block. The *complex* one that Flash Player introduced (and FFmpeg, OBS and
//! nginx-rtmp speak) hides an HMAC-SHA256 digest at a position derived from the block itself,
//! keyed with the published "Genuine Adobe Flash Player 001" / "... Media Server 001" keys; the
//! answer proves knowledge of the peer's digest. A server answers in the flavour the client
//! used; FFmpeg, when it reads from a server whose S1 announces a version, checks the digests.
//!
//! Randomness: each side expands the 32 bytes it is given with SHA-256 in counter mode, so a
//! test with a fixed seed sees byte-identical packets.

use bytes::{BufMut, BytesMut};
use sha2::{Digest, Sha256};

use crate::Error;

/// Which handshake the peer used (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeKind {
    /// The echo handshake of the RTMP specification.
    Simple,
    /// Flash's digest handshake; the digest sat at the start of the first (`0`) or the second
    /// (`1`) 764-byte block.
    Complex(DigestScheme),
}

/// Where a complex handshake hides its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestScheme {
    /// The digest block first: offset from bytes 8..12 (Flash Player 10, FFmpeg, OBS).
    DigestFirst,
    /// The key block first: offset from bytes 772..776 (Flash Player 9).
    KeyFirst,
}

/// The server side: reads C0 C1 C2, writes S0 S1 S2.
///
/// Call [`ServerHandshake::read`] with every byte that arrives until [`is_done`] is true; the
/// bytes it did not consume belong to the chunk stream. S0 S1 S2 are written to `out` as soon as
/// C1 is complete (before C2, as clients wait for S2 before sending C2).
///
/// [`is_done`]: ServerHandshake::is_done
#[derive(Debug)]
pub struct ServerHandshake {
    /// Bytes gathered of the packet being read (C0+C1, then C2).
    buf: Vec<u8>,
    /// Where the handshake stands.
    stage: Stage,
    /// Source of the random blocks.
    random: Random,
    /// The flavour, once C1 was read.
    kind: Option<HandshakeKind>,
}

/// The client side: writes C0 C1 at creation, reads S0 S1 S2, writes C2.
///
/// A server that answers with a valid complex S1 gets a complex C2; any other answer gets the
/// echo of S1 (what nginx-rtmp, FFmpeg and FMS accept in both cases). S2 is not checked: some
/// servers echo C1 there, some sign it.
#[derive(Debug)]
pub struct ClientHandshake {
    /// Bytes gathered of S0+S1+S2.
    buf: Vec<u8>,
    /// Whether C2 was written.
    done: bool,
    /// Source of the random blocks.
    random: Random,
    /// The flavour the server answered in.
    kind: Option<HandshakeKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    C0C1,
    C2,
    Done,
}

impl ServerHandshake {
    /// A handshake that will use `random` (expanded) for S1 and S2.
    pub fn new(random: [u8; 32]) -> Self {
        Self {
            buf: Vec::with_capacity(1 + PACKET),
            stage: Stage::C0C1,
            random: Random::new(random),
            kind: None,
        }
    }

    /// Consumes handshake bytes from `input`; returns how many it used.
    pub fn read(&mut self, input: &[u8], out: &mut BytesMut) -> Result<usize, Error> {
        let mut used = 0;
        while used < input.len() && self.stage != Stage::Done {
            let want = match self.stage {
                Stage::C0C1 => 1 + PACKET,
                _ => PACKET,
            };
            let n = (want - self.buf.len()).min(input.len() - used);
            self.buf.extend_from_slice(&input[used..used + n]);
            used += n;
            if self.stage == Stage::C0C1 && self.buf.first().is_some_and(|&v| v != VERSION) {
                return Err(Error::HandshakeVersion {
                    packet: "C0",
                    value: self.buf[0],
                });
            }
            if self.buf.len() < want {
                break;
            }
            if self.stage == Stage::C0C1 {
                let c1 = &self.buf[1..];
                let kind = respond(c1, &mut self.random, out);
                self.kind = Some(kind);
                self.stage = Stage::C2;
            } else {
                self.stage = Stage::Done;
            }
            self.buf.clear();
        }
        Ok(used)
    }

    /// Whether C2 has been read: further bytes are chunks.
    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// The flavour the client used, once C1 was read.
    pub fn kind(&self) -> Option<HandshakeKind> {
        self.kind
    }
}

impl ClientHandshake {
    /// Starts a handshake: writes C0 and a complex (digest-first) C1 to `out`.
    pub fn new(random: [u8; 32], out: &mut BytesMut) -> Self {
        let mut random = Random::new(random);
        let mut c1 = [0u8; PACKET];
        random.fill(&mut c1[8..]);
        c1[4..8].copy_from_slice(&CLIENT_VERSION);
        imprint(&mut c1, DigestScheme::DigestFirst, &FP_KEY[..FP_KEY_OPEN]);
        out.put_u8(VERSION);
        out.put_slice(&c1);
        Self {
            buf: Vec::with_capacity(1 + 2 * PACKET),
            done: false,
            random,
            kind: None,
        }
    }

    /// Consumes S0 S1 S2 from `input`, writes C2 to `out` once they are complete; returns how
    /// many bytes it used.
    pub fn read(&mut self, input: &[u8], out: &mut BytesMut) -> Result<usize, Error> {
        if self.done {
            return Ok(0);
        }
        let want = 1 + 2 * PACKET;
        let n = (want - self.buf.len()).min(input.len());
        self.buf.extend_from_slice(&input[..n]);
        if let Some(&v) = self.buf.first()
            && v != VERSION
        {
            return Err(Error::HandshakeVersion {
                packet: "S0",
                value: v,
            });
        }
        if self.buf.len() < want {
            return Ok(n);
        }
        let s1 = &self.buf[1..1 + PACKET];
        let found = (s1[4..8] != [0; 4])
            .then(|| find_digest(s1, &FMS_KEY[..FMS_KEY_OPEN]))
            .flatten();
        let mut c2 = [0u8; PACKET];
        match found {
            Some((scheme, pos)) => {
                self.random.fill(&mut c2[..PACKET - 32]);
                let key = hmac_sha256(&FP_KEY, &[&s1[pos..pos + 32]]);
                let sig = hmac_sha256(&key, &[&c2[..PACKET - 32]]);
                c2[PACKET - 32..].copy_from_slice(&sig);
                self.kind = Some(HandshakeKind::Complex(scheme));
            }
            None => {
                c2.copy_from_slice(s1);
                self.kind = Some(HandshakeKind::Simple);
            }
        }
        out.put_slice(&c2);
        self.done = true;
        self.buf = Vec::new();
        Ok(n)
    }

    /// Whether S0 S1 S2 were read and C2 written.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The flavour the server answered in, once S1 was read.
    pub fn kind(&self) -> Option<HandshakeKind> {
        self.kind
    }
}

/// Writes S0 S1 S2 for `c1`; returns the flavour used.
fn respond(c1: &[u8], random: &mut Random, out: &mut BytesMut) -> HandshakeKind {
    let found = (c1[4..8] != [0; 4])
        .then(|| find_digest(c1, &FP_KEY[..FP_KEY_OPEN]))
        .flatten();
    out.reserve(1 + 2 * PACKET);
    out.put_u8(VERSION);
    let mut s1 = [0u8; PACKET];
    random.fill(&mut s1[8..]);
    let Some((scheme, pos)) = found else {
        out.put_slice(&s1);
        out.put_slice(c1);
        return HandshakeKind::Simple;
    };
    s1[4..8].copy_from_slice(&SERVER_VERSION);
    imprint(&mut s1, scheme, &FMS_KEY[..FMS_KEY_OPEN]);
    out.put_slice(&s1);
    let mut s2 = [0u8; PACKET];
    random.fill(&mut s2[..PACKET - 32]);
    let key = hmac_sha256(&FMS_KEY, &[&c1[pos..pos + 32]]);
    let sig = hmac_sha256(&key, &[&s2[..PACKET - 32]]);
    s2[PACKET - 32..].copy_from_slice(&sig);
    out.put_slice(&s2);
    HandshakeKind::Complex(scheme)
}

/// The position of the digest in a 1536-byte packet under `scheme`.
fn digest_pos(packet: &[u8], scheme: DigestScheme) -> usize {
    let (base, add) = match scheme {
        DigestScheme::DigestFirst => (8, 12),
        DigestScheme::KeyFirst => (772, 776),
    };
    let sum: usize = packet[base..base + 4].iter().map(|&b| usize::from(b)).sum();
    sum % 728 + add
}

/// The digest of `packet` with the 32 bytes at `pos` left out.
fn packet_digest(packet: &[u8], pos: usize, key: &[u8]) -> [u8; 32] {
    hmac_sha256(key, &[&packet[..pos], &packet[pos + 32..]])
}

/// Finds a valid digest under either scheme (digest-first tried first, as FFmpeg sends it).
fn find_digest(packet: &[u8], key: &[u8]) -> Option<(DigestScheme, usize)> {
    [DigestScheme::DigestFirst, DigestScheme::KeyFirst]
        .into_iter()
        .map(|scheme| (scheme, digest_pos(packet, scheme)))
        .find(|&(_, pos)| packet_digest(packet, pos, key) == packet[pos..pos + 32])
}

/// Writes the digest into `packet` under `scheme`.
fn imprint(packet: &mut [u8; PACKET], scheme: DigestScheme, key: &[u8]) {
    let pos = digest_pos(packet, scheme);
    let digest = packet_digest(packet, pos, key);
    packet[pos..pos + 32].copy_from_slice(&digest);
}

/// HMAC-SHA256 (RFC 2104) over the concatenation of `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// SHA-256 in counter mode over a seed: deterministic bytes from the caller's randomness.
#[derive(Debug)]
struct Random {
    seed: [u8; 32],
    counter: u64,
}

impl Random {
    fn new(seed: [u8; 32]) -> Self {
        Self { seed, counter: 0 }
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            let block = Sha256::new()
                .chain_update(self.seed)
                .chain_update(self.counter.to_be_bytes())
                .finalize();
            self.counter += 1;
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

/// The size of C1, C2, S1 and S2.
pub const PACKET: usize = 1536;
/// The protocol version byte (C0/S0).
const VERSION: u8 = 3;
/// The version field of our C1: Flash Player 9.0.124.2, as FFmpeg sends.
const CLIENT_VERSION: [u8; 4] = [9, 0, 124, 2];
/// The version field of our S1 (as nginx-rtmp sends; any major >= 3 makes FFmpeg verify it).
const SERVER_VERSION: [u8; 4] = [0x0d, 0x0e, 0x0a, 0x0d];
/// How much of [`FP_KEY`] signs a C1.
const FP_KEY_OPEN: usize = 30;
/// How much of [`FMS_KEY`] signs an S1.
const FMS_KEY_OPEN: usize = 36;
/// "Genuine Adobe Flash Player 001" and 32 published bytes.
const FP_KEY: [u8; 62] = *b"Genuine Adobe Flash Player 001\
\xf0\xee\xc2\x4a\x80\x68\xbe\xe8\x2e\x00\xd0\xd1\x02\x9e\x7e\x57\x6e\xec\x5d\x2d\x29\x80\x6f\xab\x93\xb8\xe6\x36\xcf\xeb\x31\xae";
/// "Genuine Adobe Flash Media Server 001" and the same 32 bytes.
const FMS_KEY: [u8; 68] = *b"Genuine Adobe Flash Media Server 001\
\xf0\xee\xc2\x4a\x80\x68\xbe\xe8\x2e\x00\xd0\xd1\x02\x9e\x7e\x57\x6e\xec\x5d\x2d\x29\x80\x6f\xab\x93\xb8\xe6\x36\xcf\xeb\x31\xae";

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn run(server: &mut ServerHandshake, client: &mut ClientHandshake, c0c1: &[u8]) -> BytesMut {
        let mut s_out = BytesMut::new();
        assert_eq!(server.read(c0c1, &mut s_out).unwrap(), c0c1.len());
        let mut c_out = BytesMut::new();
        assert_eq!(client.read(&s_out, &mut c_out).unwrap(), s_out.len());
        assert!(client.is_done());
        let mut trailing = c_out.to_vec();
        trailing.extend_from_slice(b"chunks");
        let used = server.read(&trailing, &mut s_out).unwrap();
        assert_eq!(used, PACKET);
        assert!(server.is_done());
        c_out
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(mac[..8], [0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e]);
        // Keys longer than a block are hashed first (RFC 4231 case 6).
        let mac = hmac_sha256(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(mac[..4], [0x60, 0xe4, 0x31, 0x59]);
    }

    #[test]
    fn complex_handshake_both_ways() {
        let mut c0c1 = BytesMut::new();
        let mut client = ClientHandshake::new([1; 32], &mut c0c1);
        assert_eq!(c0c1.len(), 1 + PACKET);
        let mut server = ServerHandshake::new([2; 32]);
        let c2 = run(&mut server, &mut client, &c0c1);
        let complex = HandshakeKind::Complex(DigestScheme::DigestFirst);
        assert_eq!(server.kind(), Some(complex));
        assert_eq!(client.kind(), Some(complex));
        assert_eq!(c2.len(), PACKET);
    }

    #[test]
    fn server_s2_signs_the_client_digest_as_ffmpeg_checks() {
        let mut c0c1 = BytesMut::new();
        ClientHandshake::new([9; 32], &mut c0c1);
        let c1 = &c0c1[1..];
        let mut out = BytesMut::new();
        let mut server = ServerHandshake::new([3; 32]);
        server.read(&c0c1, &mut out).unwrap();
        let (s1, s2) = (&out[1..1 + PACKET], &out[1 + PACKET..]);
        // FFmpeg (rtmpproto.c, rtmp_handshake): S1 digest under the FMS key, key-first tried first.
        let (_, s1_pos) = find_digest(s1, &FMS_KEY[..FMS_KEY_OPEN]).unwrap();
        assert_eq!(s1_pos, digest_pos(s1, DigestScheme::DigestFirst));
        let c1_pos = digest_pos(c1, DigestScheme::DigestFirst);
        let key = hmac_sha256(&FMS_KEY, &[&c1[c1_pos..c1_pos + 32]]);
        assert_eq!(hmac_sha256(&key, &[&s2[..PACKET - 32]]), s2[PACKET - 32..]);
    }

    #[test]
    fn key_first_c1_gets_a_key_first_answer() {
        let mut c1 = [0x5au8; PACKET];
        c1[4..8].copy_from_slice(&[128, 0, 7, 2]);
        imprint(&mut c1, DigestScheme::KeyFirst, &FP_KEY[..FP_KEY_OPEN]);
        let mut server = ServerHandshake::new([0; 32]);
        let mut out = BytesMut::new();
        let mut input = vec![VERSION];
        input.extend_from_slice(&c1);
        server.read(&input, &mut out).unwrap();
        assert_eq!(
            server.kind(),
            Some(HandshakeKind::Complex(DigestScheme::KeyFirst))
        );
        assert!(find_digest(&out[1..1 + PACKET], &FMS_KEY[..FMS_KEY_OPEN]).is_some());
    }

    #[test]
    fn simple_handshake_echoes() {
        let mut input = vec![VERSION, 0, 0, 0, 7, 0, 0, 0, 0];
        input.extend((0..PACKET - 8).map(|i| i as u8));
        let mut server = ServerHandshake::new([4; 32]);
        let mut out = BytesMut::new();
        // Byte by byte: the answer appears once C1 is complete.
        for (i, b) in input.iter().enumerate() {
            assert_eq!(server.read(&[*b], &mut out).unwrap(), 1);
            assert_eq!(out.is_empty(), i < input.len() - 1);
        }
        assert_eq!(server.kind(), Some(HandshakeKind::Simple));
        assert_eq!(out[0], VERSION);
        assert_eq!(&out[1 + PACKET..], &input[1..]);
        // A client against an echoing server answers with the echo of S1.
        let mut c0c1 = BytesMut::new();
        let mut client = ClientHandshake::new([5; 32], &mut c0c1);
        let mut c2 = BytesMut::new();
        client.read(&out, &mut c2).unwrap();
        assert_eq!(client.kind(), Some(HandshakeKind::Simple));
        assert_eq!(&c2[..], &out[1..1 + PACKET]);
    }

    #[test]
    fn garbage_and_truncation() {
        let mut server = ServerHandshake::new([0; 32]);
        let mut out = BytesMut::new();
        assert_eq!(
            server.read(b"GET / HTTP/1.1\r\n", &mut out),
            Err(Error::HandshakeVersion {
                packet: "C0",
                value: b'G'
            })
        );
        let mut server = ServerHandshake::new([0; 32]);
        assert_eq!(server.read(&[3; 100], &mut out).unwrap(), 100);
        assert!(!server.is_done() && out.is_empty());
        let mut client = ClientHandshake::new([0; 32], &mut out);
        assert!(matches!(
            client.read(&[6, 0, 0], &mut out),
            Err(Error::HandshakeVersion {
                packet: "S0",
                value: 6
            })
        ));
    }

    #[test]
    fn seeded_output_is_deterministic() {
        let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
        ClientHandshake::new([7; 32], &mut a);
        ClientHandshake::new([7; 32], &mut b);
        assert_eq!(a, b);
        let mut c = BytesMut::new();
        ClientHandshake::new([8; 32], &mut c);
        assert_ne!(a, c);
    }

    proptest! {
        #[test]
        fn server_never_panics(data in prop::collection::vec(any::<u8>(), 0..4000), split in 1usize..2000) {
            let mut server = ServerHandshake::new([0; 32]);
            let mut out = BytesMut::new();
            for part in data.chunks(split) {
                if server.read(part, &mut out).is_err() {
                    break;
                }
            }
        }
    }
}
