//! Secret masking in API responses and logs, and keeping stored secrets when a client writes
//! the mask back (SPEC §Security "Secret redaction").
//!
//! Masked: `stream_key`; input URL passwords and the values of query keys that name a secret
//! (SPEC's `key`, `token`, `passphrase`, `password`, `secret`, `sig`, `auth`, matched anywhere
//! in the name and in any case, so `streamkey` and `access_token` are masked too); input
//! `Authorization`/`Cookie` header values and secret-named params; and in push URLs the
//! password, every path segment after the app (the platform's stream key, however many
//! segments and slashes it spans) and every query value.

use crate::stream::Stream;

/// What a secret is replaced with.
pub const MASK: &str = "****";

/// Query names (and param names) whose values are secrets when the name contains one of
/// these, in any case: SPEC's list, matched as substrings so `streamkey`, `api_key`,
/// `access_token` or `x-auth` are covered.
const SECRET_NAME_PARTS: &[&str] = &[
    "key",
    "token",
    "passphrase",
    "password",
    "secret",
    "sig",
    "auth",
];
const SECRET_HEADERS: &[&str] = &["authorization", "cookie"];

/// Whether a query or param name names a secret.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAME_PARTS.iter().any(|part| name.contains(part))
}

/// A copy of `stream` with every secret replaced by [`MASK`].
pub fn mask_stream(stream: &Stream) -> Stream {
    let mut s = stream.clone();
    if !s.stream_key.is_empty() {
        s.stream_key = MASK.into();
    }
    for input in &mut s.inputs {
        input.url = mask_url(&input.url);
        for (name, value) in &mut input.headers {
            if SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                *value = MASK.into();
            }
        }
        for (name, value) in &mut input.params {
            if is_secret_name(name) {
                *value = MASK.into();
            }
        }
    }
    for target in &mut s.push {
        target.url = mask_push_url(&target.url);
    }
    s
}

/// Puts stored secrets back where `new` carries the mask: a `stream_key` of `****`, and URLs,
/// headers and params equal to the masked form of the stored value. A URL is taken from the
/// stored item at the same position when that one masks to it, else from the first stored
/// item that does (two push targets that differ only in their keys mask alike, so position
/// decides).
pub fn restore_secrets(new: &mut Stream, stored: &Stream) {
    if new.stream_key == MASK {
        new.stream_key = stored.stream_key.clone();
    }
    for (i, input) in new.inputs.iter_mut().enumerate() {
        if input.url.contains(MASK)
            && let Some(orig) = pick(&stored.inputs, i, |s| mask_url(&s.url) == input.url)
        {
            input.url = orig.url.clone();
        }
        let Some(old) = stored.inputs.get(i) else {
            continue;
        };
        for (name, value) in input.headers.iter_mut().chain(input.params.iter_mut()) {
            if value == MASK
                && let Some(orig) = old.headers.get(name).or_else(|| old.params.get(name))
            {
                *value = orig.clone();
            }
        }
    }
    for (i, target) in new.push.iter_mut().enumerate() {
        if target.url.contains(MASK)
            && let Some(orig) = pick(&stored.push, i, |s| mask_push_url(&s.url) == target.url)
        {
            target.url = orig.url.clone();
        }
    }
}

/// The item at `index` if it `fits`, else the first that does.
fn pick<T>(items: &[T], index: usize, fits: impl Fn(&T) -> bool) -> Option<&T> {
    items
        .get(index)
        .filter(|item| fits(item))
        .or_else(|| items.iter().find(|item| fits(item)))
}

/// Masks a URL's password and the values of secret-named query keys ([`is_secret_name`]).
pub fn mask_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw.trim()) else {
        return raw.to_owned();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some(MASK));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let value = if is_secret_name(&k) {
                    MASK.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let text = url.to_string();
    // Keep the mask readable rather than percent-encoded.
    text.replace("%2A%2A%2A%2A", MASK)
}

/// Masks a push URL (`rtmp[s]://[user[:password]@]host[:port]/<app>/<stream key>[?query]`):
/// the password, everything after the app segment (`/****` whatever it holds: several
/// segments, empty ones, a trailing `/`), every query value and any fragment. Works on the
/// text, so a URL no parser accepts is masked the same way; one without a `scheme://` is
/// masked whole after its first `/`.
pub fn mask_push_url(raw: &str) -> String {
    let raw = raw.trim();
    let (head, fragment) = match raw.split_once('#') {
        Some((head, _)) => (head, Some(MASK)),
        None => (raw, None),
    };
    let (head, query) = match head.split_once('?') {
        Some((head, query)) => (head, Some(mask_query_values(query))),
        None => (head, None),
    };
    let (scheme, rest) = match head.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, head),
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    let mut out = String::with_capacity(raw.len());
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
        out.push_str(&mask_authority(authority));
        // `path` is empty or starts with `/`: the app, then the key.
        let after_slash = path.strip_prefix('/').unwrap_or("");
        let (app, key) = after_slash.split_once('/').unwrap_or((after_slash, ""));
        if !path.is_empty() {
            out.push('/');
            out.push_str(app);
        }
        if !key.is_empty() {
            out.push('/');
            out.push_str(MASK);
        } else if after_slash.len() > app.len() {
            out.push('/');
        }
    } else {
        out.push_str(authority);
        if !path.is_empty() {
            out.push('/');
            out.push_str(MASK);
        }
    }
    if let Some(query) = query {
        out.push('?');
        out.push_str(&query);
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// `user:password@host` → `user:****@host`.
fn mask_authority(authority: &str) -> String {
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{MASK}@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    }
}

/// Every value of a query string masked: `a=1&b` → `a=****&****`.
fn mask_query_values(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) => format!("{name}={MASK}"),
            None => MASK.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{Input, Push};
    use tributary_media::StreamCode;

    fn stream() -> Stream {
        let mut s = Stream::new(StreamCode::parse("a").unwrap());
        s.stream_key = "k3y".into();
        let mut input = Input::new("rtsp://user:pw@cam/x?token=abc&q=1", 0);
        input
            .headers
            .insert("Authorization".into(), "Bearer t".into());
        input.headers.insert("X-Other".into(), "v".into());
        s.inputs = vec![input];
        s.push = vec![Push {
            enabled: true,
            ..Push::new("rtmp://live.example.com/app/SECRET")
        }];
        s
    }

    #[test]
    fn masks_every_secret() {
        let m = mask_stream(&stream());
        assert_eq!(m.stream_key, MASK);
        assert_eq!(m.inputs[0].url, "rtsp://user:****@cam/x?token=****&q=1");
        assert_eq!(m.inputs[0].headers["Authorization"], MASK);
        assert_eq!(m.inputs[0].headers["X-Other"], "v");
        assert_eq!(m.push[0].url, "rtmp://live.example.com/app/****");
        let text = serde_json::to_string(&m).unwrap();
        for secret in ["k3y", "pw", "abc", "Bearer t", "SECRET"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }

    #[test]
    fn writing_the_mask_back_keeps_stored_secrets() {
        let stored = stream();
        let mut echoed = mask_stream(&stored);
        restore_secrets(&mut echoed, &stored);
        assert_eq!(echoed, stored);
    }

    #[test]
    fn push_url_zoo() {
        for (raw, masked) in [
            ("rtmp://h/app/key?x=1", "rtmp://h/app/****?x=****"),
            ("rtmp://h", "rtmp://h"),
            ("rtmp://h/app", "rtmp://h/app"),
            ("rtmp://h/app/", "rtmp://h/app/"),
            ("rtmp://h/app/KEY_A/", "rtmp://h/app/****"),
            ("rtmp://h/app//KEY_B", "rtmp://h/app/****"),
            ("rtmp://h:1935/app/KEYX/KEYY", "rtmp://h:1935/app/****"),
            ("rtmp://h//KEYC", "rtmp://h//****"),
            ("rtmps://u:PW@h/app/KEYD", "rtmps://u:****@h/app/****"),
            (
                "rtmp://h/app/KEYE?streamkey=S1&access_token=S2&flag",
                "rtmp://h/app/****?streamkey=****&access_token=****&****",
            ),
            ("rtmp://h/app/KEYF#FRAG", "rtmp://h/app/****#****"),
            ("h/app/KEYG", "h/****"),
            ("  rtmp://h/app/KEYH  ", "rtmp://h/app/****"),
        ] {
            assert_eq!(mask_push_url(raw), masked, "{raw}");
        }
    }

    #[test]
    fn secret_query_names_match_anywhere_in_any_case() {
        assert_eq!(
            mask_url("https://o/x.m3u8?streamkey=A&Access_Token=B&api_key=C&q=1"),
            "https://o/x.m3u8?streamkey=****&Access_Token=****&api_key=****&q=1"
        );
    }

    #[test]
    fn push_targets_that_mask_alike_are_restored_by_position() {
        let mut stored = stream();
        let mut second = stored.push[0].clone();
        second.url = "rtmp://live.example.com/app/OTHER".into();
        stored.push.push(second);
        let mut echoed = mask_stream(&stored);
        assert_eq!(echoed.push[0].url, echoed.push[1].url);
        restore_secrets(&mut echoed, &stored);
        assert_eq!(echoed, stored);
    }
}
