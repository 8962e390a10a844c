//! A minimal MaxMind DB (`.mmdb`) writer, for tests of GeoIP lookups.
//!
//! **Why a writer here.** The tests need a real `.mmdb` file to hand the server, and none can
//! be had on this machine: there is no network to fetch GeoLite2, no Debian package ships an
//! `.mmdb` (`geoip-database` holds the legacy `.dat` format; the MaxMind reader packages carry
//! no test data), and the `maxminddb` crate publishes its test databases only in its git
//! repository. So the tests write one, following the published MaxMind DB format 2.0: a
//! binary search tree over the address bits (24-bit records), 16 zero bytes, a data section
//! of typed values, and the metadata map after the `\xAB\xCD\xEFMaxMind.com` marker. The
//! database is IPv6 (`ip_version` 6) with IPv4 networks under `::/96`, as MaxMind's own
//! databases are, so both address families are looked up the way they are in production.
//! Each network maps to the record `{"country": {"iso_code": <code>}}`, the part of a
//! GeoIP2/GeoLite2 Country record Tributary reads.
//!
//! ```
//! let db = tributary_testkit::country_mmdb(&[("192.0.2.0/24", "SE"), ("2001:db8::/32", "JP")]);
//! // The metadata follows its marker at the end of the file.
//! let marker = db.windows(14).position(|w| w == b"\xAB\xCD\xEFMaxMind.com").unwrap();
//! assert!(db.len() - marker < 400);
//! ```

use std::net::IpAddr;

/// A MaxMind DB mapping each `(network, country)` (`"192.0.2.0/24"`, `"2001:db8::/32"`) to a
/// record whose `country.iso_code` is `country`; every other address has no record.
///
/// Panics on a malformed network: the caller is a test that wrote it.
pub fn country_mmdb(networks: &[(&str, &str)]) -> Vec<u8> {
    let mut data = Vec::new();
    let mut tree = Tree::default();
    for (network, country) in networks {
        let offset = u32::try_from(data.len()).expect("a small test database");
        encode_map(&mut data, 1);
        encode_str(&mut data, "country");
        encode_map(&mut data, 1);
        encode_str(&mut data, "iso_code");
        encode_str(&mut data, country);
        let (bits, len) = parse_network(network);
        tree.insert(bits, len, offset);
    }
    let node_count = u32::try_from(tree.nodes.len()).expect("a small test database");
    let mut out = Vec::with_capacity(tree.nodes.len() * 6 + data.len() + 256);
    for node in &tree.nodes {
        for record in node {
            let value = match *record {
                Record::Node(index) => index,
                Record::Empty => node_count,
                // Data pointers count from the end of the tree, past the 16-byte separator.
                Record::Data(offset) => node_count + 16 + offset,
            };
            assert!(value < 1 << 24, "a 24-bit record");
            out.extend_from_slice(&value.to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    encode_map(&mut out, 9);
    encode_str(&mut out, "binary_format_major_version");
    encode_uint(&mut out, 5, 2);
    encode_str(&mut out, "binary_format_minor_version");
    encode_uint(&mut out, 5, 0);
    encode_str(&mut out, "build_epoch");
    encode_uint(&mut out, 9, 1_795_514_400);
    encode_str(&mut out, "database_type");
    encode_str(&mut out, "Tributary-Test-Country");
    encode_str(&mut out, "description");
    encode_map(&mut out, 1);
    encode_str(&mut out, "en");
    encode_str(&mut out, "written by tributary-testkit for tests");
    encode_str(&mut out, "ip_version");
    encode_uint(&mut out, 5, 6);
    encode_str(&mut out, "languages");
    encode_control(&mut out, 11, 1); // array of one
    encode_str(&mut out, "en");
    encode_str(&mut out, "node_count");
    encode_uint(&mut out, 6, u64::from(node_count));
    encode_str(&mut out, "record_size");
    encode_uint(&mut out, 5, 24);
    out
}

/// One side of a tree node.
#[derive(Debug, Clone, Copy)]
enum Record {
    Node(u32),
    Empty,
    Data(u32),
}

/// The search tree: node 0 is the root; bit 0 of an address goes left (`[0]`).
#[derive(Default)]
struct Tree {
    nodes: Vec<[Record; 2]>,
}

impl Tree {
    /// Points the `len` leading bits of `bits` (128-bit, IPv6 order) at data `offset`.
    fn insert(&mut self, bits: u128, len: u32, offset: u32) {
        assert!(len >= 1, "a network with at least one bit of prefix");
        if self.nodes.is_empty() {
            self.nodes.push([Record::Empty; 2]);
        }
        let mut node = 0usize;
        for depth in 0..len {
            let side = usize::from((bits >> (127 - depth)) & 1 == 1);
            if depth + 1 == len {
                self.nodes[node][side] = Record::Data(offset);
                return;
            }
            node = match self.nodes[node][side] {
                Record::Node(index) => index as usize,
                // A wider network already holds this range: split it around the narrower.
                previous => {
                    let index = self.nodes.len();
                    self.nodes.push([previous; 2]);
                    self.nodes[node][side] = Record::Node(index as u32);
                    index
                }
            };
        }
    }
}

/// `"a.b.c.d/n"` → (`::a.b.c.d` bits, 96 + n); `"x::/n"` → (bits, n).
fn parse_network(network: &str) -> (u128, u32) {
    let (address, len) = network.split_once('/').expect("network/prefix");
    let len: u32 = len.parse().expect("a prefix length");
    match address.parse::<IpAddr>().expect("an address") {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 96 + len),
        IpAddr::V6(v6) => (u128::from(v6), len),
    }
}

/// A control byte (and extended type byte) for a value of `kind` and `size` (< 285).
fn encode_control(out: &mut Vec<u8>, kind: u8, size: usize) {
    let (first, extended) = if kind > 7 {
        (0u8, Some(kind - 7))
    } else {
        (kind << 5, None)
    };
    let size_bits = if size < 29 { size as u8 } else { 29 };
    out.push(first | size_bits);
    if let Some(extended) = extended {
        out.push(extended);
    }
    if size >= 29 {
        out.push(u8::try_from(size - 29).expect("a short test value"));
    }
}

fn encode_map(out: &mut Vec<u8>, pairs: usize) {
    encode_control(out, 7, pairs);
}

fn encode_str(out: &mut Vec<u8>, text: &str) {
    encode_control(out, 2, text.len());
    out.extend_from_slice(text.as_bytes());
}

/// An unsigned integer of MMDB type `kind` (5 uint16, 6 uint32, 9 uint64), in as few bytes
/// as it needs.
fn encode_uint(out: &mut Vec<u8>, kind: u8, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    encode_control(out, kind, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}
