//! Reading one input's options: its URL's query with `params` merged over it (SPEC §Domain
//! "Input": `params` override equal keys), each value remembering where it came from, so an
//! error names the field the operator has to edit (`inputs[0].url` or
//! `inputs[0].params.pkt_size`).

use std::collections::BTreeMap;

use url::Url;

use crate::validate::{ErrorCode, FieldError};

/// The options of one input.
pub(super) struct Options<'a> {
    /// `inputs[<i>]`.
    prefix: &'a str,
    /// The URL's query pairs, in order, percent-decoded.
    query: Vec<(String, String)>,
    /// The input's `params`, which win over the query.
    params: &'a BTreeMap<String, String>,
}

impl<'a> Options<'a> {
    /// The options of a URL's `query` (without `?`, may be empty) and `params`.
    pub(super) fn new(prefix: &'a str, query: &str, params: &'a BTreeMap<String, String>) -> Self {
        let query = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Self {
            prefix,
            query,
            params,
        }
    }

    /// `inputs[<i>]`, the prefix of every field this input's errors name.
    pub(super) fn prefix(&self) -> &str {
        self.prefix
    }

    /// The value of `key`: from `params`, else the last one in the query.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        if let Some(value) = self.params.get(key) {
            return Some(value);
        }
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean option: `true/1/yes/on` or `false/0/no/off` (any case); `default` when
    /// absent.
    pub(super) fn bool(&self, key: &str, default: bool) -> Result<bool, FieldError> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => parse_bool(value).ok_or_else(|| {
                self.error(
                    key,
                    format!("{value:?} is not true/false/1/0/yes/no/on/off"),
                )
            }),
        }
    }

    /// An error about option `key`, at the field it came from.
    pub(super) fn error(&self, key: &str, reason: impl Into<String>) -> FieldError {
        let reason = reason.into();
        if self.params.contains_key(key) {
            FieldError::new(
                format!("{}.params.{key}", self.prefix),
                ErrorCode::InvalidField,
                reason,
            )
        } else {
            FieldError::new(
                format!("{}.url", self.prefix),
                ErrorCode::InvalidInputUrl,
                format!("{key}: {reason}"),
            )
        }
    }
}

/// `url` with `params` merged into its query: a param replaces every query pair of the same
/// key; the others keep their order.
pub(super) fn merge_params(mut url: Url, params: &BTreeMap<String, String>) -> Url {
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

/// The query of a raw URL or path (`/a.ts?loop=0#x` → `loop=0`), empty when it has none.
pub(super) fn raw_query(raw: &str) -> &str {
    raw.trim()
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(q))
        .unwrap_or("")
}

/// `true/1/yes/on` or `false/0/no/off`, any case.
pub(super) fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_win_and_errors_name_their_origin() {
        let params = BTreeMap::from([("rtp".to_owned(), "0".to_owned())]);
        let options = Options::new("inputs[2]", "pkt_size=188&rtp=1&x=a&x=b", &params);
        assert_eq!(options.get("rtp"), Some("0"));
        assert_eq!(options.get("x"), Some("b"));
        assert_eq!(options.get("nope"), None);
        let from_url = options.error("pkt_size", "too small");
        assert_eq!(from_url.path, "inputs[2].url");
        assert_eq!(from_url.code, ErrorCode::InvalidInputUrl);
        assert_eq!(from_url.message, "pkt_size: too small");
        let from_params = options.error("rtp", "bad");
        assert_eq!(from_params.path, "inputs[2].params.rtp");
        assert_eq!(from_params.code, ErrorCode::InvalidField);
    }

    #[test]
    fn merged_urls_keep_order_and_replace_equal_keys() {
        let url = Url::parse("udp://239.1.1.1:5000?pkt_size=188&rtp=1&x=a").unwrap();
        let params = BTreeMap::from([("rtp".to_owned(), "0".to_owned())]);
        assert_eq!(
            merge_params(url, &params).query(),
            Some("pkt_size=188&x=a&rtp=0")
        );
    }

    #[test]
    fn raw_queries_and_booleans() {
        assert_eq!(raw_query("/srv/a.ts"), "");
        assert_eq!(raw_query("file:///srv/a.ts?loop=false#frag"), "loop=false");
        for t in ["true", "1", "YES", "on"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["false", "0", "no", "Off"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        assert_eq!(parse_bool("sometimes"), None);
    }
}
