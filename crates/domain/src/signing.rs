//! Signed play URLs (SPEC §Security "Signed play URLs").
//!
//! With `security.play_signing.enabled`, every media request (playlists, segments, the MPD,
//! HTTP-TS, thumbnails) and every RTMP, RTSP or SRT play carries `exp` (Unix seconds, in the
//! future) and `sig`: the hex HMAC-SHA256 under `play_signing.key` of `<code>|<exp>`, with
//! `|<ip>` appended when `bind_ip` is on (the client's address as it is written, IPv4-mapped
//! IPv6 as plain IPv4). A playlist or MPD that a signed request fetched names its children
//! with the same `exp` and `sig` ([`sign_playlist`], [`sign_mpd`]), so a player needs one
//! signed URL per stream.
//!
//! Pure: the caller brings the clock and the peer's address. The signature is compared in
//! constant time; a tampered `exp` fails as an invalid signature before it is read as a time.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::StreamCode;
use crate::config::SecuritySection;

/// Checks and makes the signatures of one key.
#[derive(Clone)]
pub struct PlaySigner {
    key: Vec<u8>,
    bind_ip: bool,
}

impl std::fmt::Debug for PlaySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaySigner")
            .field("key", &"****")
            .field("bind_ip", &self.bind_ip)
            .finish()
    }
}

/// Why a play was refused (every variant is a 403, or a refused play).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `exp` or no `sig`.
    #[error("this server requires signed play URLs: add exp and sig to the URL's query")]
    Missing,
    /// `exp` is not Unix seconds, or `sig` not 64 hex digits.
    #[error("the play URL's exp must be Unix seconds and its sig 64 hex digits")]
    Malformed,
    /// The signature does not match the stream, `exp` (and the client's address).
    #[error("the play URL's signature does not match this stream and exp")]
    Invalid,
    /// The signature matches but `exp` has passed.
    #[error("the play URL expired")]
    Expired,
}

/// The `exp` and `sig` a request carried, to hand on to the URIs a playlist names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature<'q> {
    /// Unix seconds, as sent.
    pub exp: &'q str,
    /// Hex HMAC, as sent.
    pub sig: &'q str,
}

impl Signature<'_> {
    /// `exp=…&sig=…`.
    pub fn query(&self) -> String {
        format!("exp={}&sig={}", self.exp, self.sig)
    }
}

impl PlaySigner {
    /// A signer of `key`; `bind_ip` binds each signature to one client address.
    pub fn new(key: &str, bind_ip: bool) -> Self {
        Self {
            key: key.as_bytes().to_vec(),
            bind_ip,
        }
    }

    /// The signer `security.play_signing` asks for, if it is on ([`crate::config`]'s
    /// validation refuses it on without a key).
    pub fn from_config(security: &SecuritySection) -> Option<Self> {
        let signing = security.play_signing.as_ref()?;
        let key = signing.key.as_deref().filter(|k| !k.is_empty())?;
        signing
            .enabled
            .unwrap_or(false)
            .then(|| Self::new(key, signing.bind_ip.unwrap_or(false)))
    }

    /// The hex signature of `code` until `exp` (for the client at `ip` when bound to IPs).
    pub fn sign(&self, code: &StreamCode, exp: u64, ip: Option<IpAddr>) -> String {
        self.sign_subject(code.as_str(), exp, ip)
    }

    /// [`sign`](Self::sign) for a subject other than a stream code (`vod/<mount>`).
    pub fn sign_subject(&self, subject: &str, exp: u64, ip: Option<IpAddr>) -> String {
        let digest = self
            .mac(subject, &exp.to_string(), ip)
            .finalize()
            .into_bytes();
        let mut out = String::with_capacity(64);
        crate::hex::push(&mut out, &digest);
        out
    }

    /// Checks the `exp` and `sig` of `query` (without its `?`) for a play of `code` by the
    /// client at `ip`, at `now` (Unix seconds).
    pub fn verify<'q>(
        &self,
        code: &StreamCode,
        query: &'q str,
        ip: IpAddr,
        now: u64,
    ) -> Result<Signature<'q>, SignatureError> {
        self.verify_subject(code.as_str(), query, ip, now)
    }

    /// [`verify`](Self::verify) for what is signed in place of a stream code: `vod/<mount>`
    /// for a VOD mount's files (`vod` is a reserved first segment of stream codes, so no
    /// stream's signature opens a mount, nor a mount's a stream).
    pub fn verify_subject<'q>(
        &self,
        subject: &str,
        query: &'q str,
        ip: IpAddr,
        now: u64,
    ) -> Result<Signature<'q>, SignatureError> {
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value)
        };
        let (Some(exp), Some(sig)) = (param("exp"), param("sig")) else {
            return Err(SignatureError::Missing);
        };
        let mut wanted = [0u8; 32];
        if !exp.bytes().all(|b| b.is_ascii_digit()) || exp.is_empty() || !unhex(sig, &mut wanted) {
            return Err(SignatureError::Malformed);
        }
        self.mac(subject, exp, Some(ip))
            .verify_slice(&wanted)
            .map_err(|_| SignatureError::Invalid)?;
        // Digits only, so the one failure left is a number past u64: far in the future.
        let until = exp.parse::<u64>().unwrap_or(u64::MAX);
        if until <= now {
            return Err(SignatureError::Expired);
        }
        Ok(Signature { exp, sig })
    }

    fn mac(&self, subject: &str, exp: &str, ip: Option<IpAddr>) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(subject.as_bytes());
        mac.update(b"|");
        mac.update(exp.as_bytes());
        if let (true, Some(ip)) = (self.bind_ip, ip) {
            mac.update(b"|");
            mac.update(ip.to_canonical().to_string().as_bytes());
        }
        mac
    }
}

/// Decodes 64 hex digits (either case) into `out`.
fn unhex(text: &str, out: &mut [u8; 32]) -> bool {
    let digit = |b: u8| char::from(b).to_digit(16);
    text.len() == 64
        && text
            .as_bytes()
            .chunks_exact(2)
            .zip(out.iter_mut())
            .all(|(pair, byte)| match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => {
                    *byte = (hi << 4 | lo) as u8;
                    true
                }
                _ => false,
            })
}

/// An HLS playlist whose URIs carry `query` (`exp=…&sig=…`): every URI line, and every
/// `URI="…"` attribute of a tag (`EXT-X-MAP`, `EXT-X-PART`, `EXT-X-PRELOAD-HINT`,
/// `EXT-X-RENDITION-REPORT`, `EXT-X-MEDIA`).
pub fn sign_playlist(playlist: &str, query: &str) -> String {
    let mut out = String::with_capacity(playlist.len() + playlist.len() / 4);
    for line in playlist.split_inclusive('\n') {
        let (text, end) = split_newline(line);
        if text.is_empty() {
        } else if text.starts_with('#') {
            push_signed_attributes(&mut out, text, "URI=\"", query);
        } else {
            push_with_query(&mut out, text, query);
        }
        out.push_str(end);
    }
    out
}

/// A DASH MPD whose segment templates carry `query`: the `media` and `initialization`
/// attributes (XML-escaped).
pub fn sign_mpd(mpd: &str, query: &str) -> String {
    let escaped = query.replace('&', "&amp;");
    let mut media = String::with_capacity(mpd.len() + mpd.len() / 8);
    push_signed_attributes(&mut media, mpd, "media=\"", &escaped);
    let mut out = String::with_capacity(media.len() + media.len() / 8);
    push_signed_attributes(&mut out, &media, "initialization=\"", &escaped);
    out
}

fn split_newline(line: &str) -> (&str, &str) {
    let text = line.trim_end_matches(['\r', '\n']);
    (text, &line[text.len()..])
}

/// `uri` then `?query`, or `&query` when it has a query already.
fn push_with_query(out: &mut String, uri: &str, query: &str) {
    out.push_str(uri);
    out.push(if uri.contains('?') { '&' } else { '?' });
    out.push_str(query);
}

/// `text` with `query` added to the value of every `<name>"…"` attribute in it.
fn push_signed_attributes(out: &mut String, text: &str, name: &str, query: &str) {
    let mut rest = text;
    while let Some(at) = rest.find(name) {
        let value_from = at + name.len();
        let Some(len) = rest[value_from..].find('"') else {
            break;
        };
        out.push_str(&rest[..value_from]);
        push_with_query(out, &rest[value_from..value_from + len], query);
        rest = &rest[value_from + len..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> StreamCode {
        text.parse().unwrap()
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    #[test]
    fn a_signature_is_the_hex_hmac_of_code_and_exp() {
        // HMAC-SHA256("k3y", "cam|1700000000") and ("k3y", "cam|1700000000|192.0.2.7"),
        // computed outside (Python's hmac).
        let open = PlaySigner::new("k3y", false);
        assert_eq!(
            open.sign(&code("cam"), 1_700_000_000, Some(IP)),
            "8cfc6825f4952458126fd5fd159d44748f2d5ae489851871b737b34e0d277c9d"
        );
        let bound = PlaySigner::new("k3y", true);
        assert_eq!(
            bound.sign(&code("cam"), 1_700_000_000, Some(IP)),
            "2c54f70493fcdb61dd84e080363e7046e7bd4c3a390216f906a114361cd921be"
        );
    }

    #[test]
    fn verify_accepts_its_own_signatures_until_they_expire() {
        let signer = PlaySigner::new("k3y", false);
        let cam = code("sports/cam");
        let sig = signer.sign(&cam, 1000, None);
        let query = format!("token=a&exp=1000&sig={sig}");
        let ok = signer.verify(&cam, &query, IP, 999).unwrap();
        assert_eq!(ok.query(), format!("exp=1000&sig={sig}"));
        assert_eq!(
            signer.verify(&cam, &query, IP, 1000),
            Err(SignatureError::Expired)
        );
        let upper = query
            .to_uppercase()
            .replace("EXP", "exp")
            .replace("SIG", "sig");
        assert!(
            signer.verify(&cam, &upper, IP, 999).is_ok(),
            "hex in either case"
        );
    }

    #[test]
    fn verify_refuses_what_does_not_match() {
        let signer = PlaySigner::new("k3y", false);
        let cam = code("cam");
        let sig = signer.sign(&cam, 1000, None);
        let check = |query: &str| signer.verify(&cam, query, IP, 0).map(|_| ());
        assert_eq!(check(""), Err(SignatureError::Missing));
        assert_eq!(check("exp=1000"), Err(SignatureError::Missing));
        assert_eq!(check(&format!("sig={sig}")), Err(SignatureError::Missing));
        assert_eq!(
            check(&format!("exp=1e3&sig={sig}")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(check("exp=1000&sig=abc"), Err(SignatureError::Malformed));
        assert_eq!(
            check(&format!("exp=1001&sig={sig}")),
            Err(SignatureError::Invalid)
        );
        let mut tampered = sig.clone().into_bytes();
        tampered[0] = if tampered[0] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            check(&format!("exp=1000&sig={tampered}")),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            signer.verify(&code("other"), &format!("exp=1000&sig={sig}"), IP, 0),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            PlaySigner::new("other-key", false).verify(&cam, &format!("exp=1000&sig={sig}"), IP, 0),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn a_bound_signature_holds_for_its_address_only() {
        let signer = PlaySigner::new("k3y", true);
        let cam = code("cam");
        let sig = signer.sign(&cam, 1000, Some(IP));
        let query = format!("exp=1000&sig={sig}");
        assert!(signer.verify(&cam, &query, IP, 0).is_ok());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(
            signer.verify(&cam, &query, mapped, 0).is_ok(),
            "IPv4-mapped is IPv4"
        );
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(
            signer.verify(&cam, &query, other, 0),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn a_signed_playlist_names_every_child_with_the_signature() {
        let playlist = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MAP:URI=\"init_1.mp4\"\n\
            #EXTINF:2.000,\nseg_000001.m4s\n#EXT-X-PART:DURATION=0.5,URI=\"part_2_0.m4s\"\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part_2_1.m4s\"\r\n\
            #EXT-X-RENDITION-REPORT:URI=\"../track_2/index.m3u8?x=1\",LAST-MSN=2\n\
            track_1/index.m3u8\n";
        let signed = sign_playlist(playlist, "exp=9&sig=ab");
        assert_eq!(
            signed,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MAP:URI=\"init_1.mp4?exp=9&sig=ab\"\n\
            #EXTINF:2.000,\nseg_000001.m4s?exp=9&sig=ab\n\
            #EXT-X-PART:DURATION=0.5,URI=\"part_2_0.m4s?exp=9&sig=ab\"\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part_2_1.m4s?exp=9&sig=ab\"\r\n\
            #EXT-X-RENDITION-REPORT:URI=\"../track_2/index.m3u8?x=1&exp=9&sig=ab\",LAST-MSN=2\n\
            track_1/index.m3u8?exp=9&sig=ab\n"
        );
    }

    #[test]
    fn a_signed_mpd_names_its_segments_with_the_signature() {
        let mpd = "<MPD>\n<SegmentTemplate timescale=\"90000\" \
            initialization=\"track_1/init_v.mp4\" media=\"track_1/seg_v_$Number%06d$.m4s\" \
            startNumber=\"1\">\n</MPD>\n";
        assert_eq!(
            sign_mpd(mpd, "exp=9&sig=ab"),
            "<MPD>\n<SegmentTemplate timescale=\"90000\" \
            initialization=\"track_1/init_v.mp4?exp=9&amp;sig=ab\" \
            media=\"track_1/seg_v_$Number%06d$.m4s?exp=9&amp;sig=ab\" startNumber=\"1\">\n</MPD>\n"
        );
    }

    proptest::proptest! {
        #[test]
        fn verify_never_panics(query in ".{0,200}", now in proptest::num::u64::ANY) {
            let signer = PlaySigner::new("k", true);
            let _ = signer.verify(&code("cam"), &query, IP, now);
        }

        #[test]
        fn a_signed_playlist_keeps_every_line_and_only_adds(lines in proptest::collection::vec("[#A-Za-z0-9_.=\",:/ -]{0,40}", 0..20)) {
            let playlist = lines.join("\n");
            let signed = sign_playlist(&playlist, "exp=1&sig=2");
            proptest::prop_assert_eq!(signed.lines().count(), playlist.lines().count());
            proptest::prop_assert!(signed.len() >= playlist.len());
        }
    }
}
