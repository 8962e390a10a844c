//! Input options from the URL query and `params` (SPEC §Domain "Input": `params` are merged
//! into the URL query, overriding equal keys).

use std::collections::BTreeMap;

use url::Url;

/// `url` with `params` merged into its query: a param replaces every query pair of the same
/// key; the others keep their order.
pub(crate) fn merge_params(mut url: Url, params: &BTreeMap<String, String>) -> Url {
    if params.is_empty() {
        return url;
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !params.contains_key(k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .extend_pairs(params);
    url
}

/// The options of a file input: the query of the raw URL (`/a.ts?loop=false`,
/// `file:///a.ts?loop=0`) with `params` merged over it.
pub(crate) fn file_query(raw: &str, params: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let raw = raw.trim();
    let query = raw
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(q))
        .unwrap_or("");
    let mut options: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    options.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
    options
}

/// The last value of `key` in the URL's query.
pub(crate) fn query_value(url: &Url, key: &str) -> Option<String> {
    url.query_pairs()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .last()
}

/// A boolean option: `true/1/yes/on` or `false/0/no/off` (any case).
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Why an option was refused: the option's name and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OptionError(pub(crate) &'static str, pub(crate) String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_override_the_query() {
        let url = Url::parse("udp://239.1.1.1:5000?pkt_size=188&rtp=1&x=a").unwrap();
        let params = BTreeMap::from([("rtp".to_owned(), "0".to_owned())]);
        let merged = merge_params(url, &params);
        assert_eq!(merged.query(), Some("pkt_size=188&x=a&rtp=0"));
        assert_eq!(query_value(&merged, "rtp").as_deref(), Some("0"));
    }

    #[test]
    fn file_options_from_raw_url_and_params() {
        let none = BTreeMap::new();
        assert_eq!(file_query("/srv/a.ts", &none), BTreeMap::new());
        let q = file_query("file:///srv/a.ts?loop=false&x=1", &none);
        assert_eq!(q.get("loop").map(String::as_str), Some("false"));
        let params = BTreeMap::from([("loop".to_owned(), "on".to_owned())]);
        let q = file_query("/srv/a.ts?loop=false", &params);
        assert_eq!(q.get("loop").map(String::as_str), Some("on"));
    }

    #[test]
    fn booleans() {
        for t in ["true", "1", "YES", "on"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["false", "0", "no", "Off"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        assert_eq!(parse_bool("maybe"), None);
    }
}
