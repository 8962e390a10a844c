//! GeoIP (SPEC §Sessions): the `country` of a play session, from the MaxMind database
//! (`.mmdb`, GeoIP2 / GeoLite2 Country or City) that `sessions.geoip_db_path` names.
//!
//! The database is read whole into memory once, when the sessions are set up, with the
//! `maxminddb` crate (the reference reader of the format, ISC-licensed, no C library). A
//! lookup is a walk down its search tree and a decode of one string borrowed from the
//! database, done only when a session opens, never per request; the one allocation is the
//! `String` the session record keeps. An empty path means no GeoIP; a file that cannot be
//! read or is not a MaxMind DB is logged once, naming the path, and every `country` stays
//! `""`, so a missing database never keeps the server from starting.
//!
//! A path written through the config API is different: [`GeoIp::load`] reads it strictly
//! before anything is stored, so a bad file is a 422 naming `sessions.geoip_db_path` and the
//! database in use stays; a good one replaces it for sessions opened from then on.

use std::net::IpAddr;

use maxminddb::{PathElement, Reader};

/// The country database, or none.
pub(crate) struct GeoIp {
    /// The whole database; `None` without a path or when it could not be read.
    reader: Option<Reader<Vec<u8>>>,
}

impl GeoIp {
    /// The database at `path` (`sessions.geoip_db_path`); no GeoIP when the path is unset or
    /// blank, or when the file cannot be read (logged once at WARN with the path).
    pub(crate) fn open(path: Option<&str>) -> Self {
        let Some(path) = path.map(str::trim).filter(|p| !p.is_empty()) else {
            return Self { reader: None };
        };
        match Self::load(path) {
            Ok(geoip) => geoip,
            Err(error) => {
                tracing::warn!(
                    path,
                    %error,
                    "sessions.geoip_db_path: cannot read the GeoIP database; every session's \
                     country is \"\""
                );
                Self { reader: None }
            }
        }
    }

    /// The database at `path` (trimmed; blank means no GeoIP), or why it cannot be read.
    pub(crate) fn load(path: &str) -> Result<Self, String> {
        let path = path.trim();
        if path.is_empty() {
            return Ok(Self { reader: None });
        }
        let reader = Reader::open_readfile(path).map_err(|e| e.to_string())?;
        tracing::info!(
            path,
            database_type = %reader.metadata().database_type,
            "GeoIP database loaded: sessions get their country from it"
        );
        Ok(Self {
            reader: Some(reader),
        })
    }

    /// The ISO 3166-1 code of `ip`'s country (`country.iso_code`, else the
    /// `registered_country`'s), or `None` when there is no database or no record.
    pub(crate) fn country(&self, ip: IpAddr) -> Option<&str> {
        let reader = self.reader.as_ref()?;
        // A v4-mapped peer (::ffff:a.b.c.d, a dual-stack socket) is its IPv4 address.
        let result = reader.lookup(ip.to_canonical()).ok()?;
        ["country", "registered_country"]
            .into_iter()
            .find_map(|key| {
                let path = [PathElement::Key(key), PathElement::Key("iso_code")];
                result.decode_path::<&str>(&path).ok().flatten()
            })
    }
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("loaded", &self.reader.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database written by the testkit (no real `.mmdb` can be fetched here), in a file.
    fn database(networks: &[(&str, &str)]) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("country.mmdb");
        std::fs::write(&path, tributary_testkit::country_mmdb(networks)).unwrap();
        (dir, path.to_str().unwrap().to_owned())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_country_database_names_the_country_of_v4_v6_and_mapped_addresses() {
        let (_dir, path) = database(&[
            ("192.0.2.0/24", "SE"),
            ("198.51.100.0/25", "BR"),
            ("2001:db8::/32", "JP"),
            // A narrower network inside a wider one wins for its own addresses.
            ("10.0.0.0/8", "DE"),
            ("10.1.0.0/16", "FR"),
        ]);
        let geoip = GeoIp::open(Some(&path));
        for (address, want) in [
            ("192.0.2.7", Some("SE")),
            ("192.0.2.255", Some("SE")),
            ("198.51.100.127", Some("BR")),
            ("198.51.100.128", None),
            ("2001:db8:1::5", Some("JP")),
            ("2001:db9::1", None),
            ("::ffff:192.0.2.7", Some("SE")),
            ("10.2.3.4", Some("DE")),
            ("10.1.3.4", Some("FR")),
            ("203.0.113.1", None),
            ("127.0.0.1", None),
        ] {
            assert_eq!(geoip.country(ip(address)), want, "{address}");
        }
    }

    #[test]
    fn no_path_or_an_unreadable_file_is_no_country() {
        for path in [None, Some(""), Some("  ")] {
            assert_eq!(GeoIp::open(path).country(ip("192.0.2.7")), None);
        }
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.mmdb");
        let not_mmdb = dir.path().join("garbage.mmdb");
        std::fs::write(&not_mmdb, b"not a MaxMind database").unwrap();
        for path in [&missing, &not_mmdb, &dir.path().to_path_buf()] {
            let geoip = GeoIp::open(path.to_str());
            assert!(geoip.reader.is_none(), "{path:?}");
            assert_eq!(geoip.country(ip("192.0.2.7")), None);
        }
    }

    #[test]
    fn a_truncated_database_is_refused_or_finds_nothing() {
        // Cut inside the search tree: the metadata is gone, the file is refused at open.
        let (dir, path) = database(&[("192.0.2.0/24", "SE")]);
        let whole = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.mmdb");
        std::fs::write(&cut, &whole[..20]).unwrap();
        let geoip = GeoIp::open(cut.to_str());
        assert_eq!(geoip.country(ip("192.0.2.7")), None);
    }
}
