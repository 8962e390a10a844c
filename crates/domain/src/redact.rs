//! Secret masking in API responses, and keeping stored secrets when a client writes the mask
//! back (SPEC §Security "Secret redaction").
//!
//! Masked: `stream_key`; input URL passwords and the values of the query keys `key`, `token`,
//! `passphrase`, `password`, `secret`, `sig`, `auth`; input `Authorization`/`Cookie` header
//! values; and the last path segment of push URLs (the platform's stream key).

use crate::stream::Stream;

/// What a secret is replaced with.
pub const MASK: &str = "****";

const SECRET_QUERY_KEYS: &[&str] = &[
    "key",
    "token",
    "passphrase",
    "password",
    "secret",
    "sig",
    "auth",
];
const SECRET_HEADERS: &[&str] = &["authorization", "cookie"];

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
            if SECRET_QUERY_KEYS.contains(&name.to_ascii_lowercase().as_str()) {
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
/// headers and params equal to the masked form of the stored value at the same position or
/// (for URLs) anywhere in the stored list.
pub fn restore_secrets(new: &mut Stream, stored: &Stream) {
    if new.stream_key == MASK {
        new.stream_key = stored.stream_key.clone();
    }
    for (i, input) in new.inputs.iter_mut().enumerate() {
        if input.url.contains(MASK)
            && let Some(orig) = stored.inputs.iter().find(|s| mask_url(&s.url) == input.url)
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
    for target in &mut new.push {
        if target.url.contains(MASK)
            && let Some(orig) = stored
                .push
                .iter()
                .find(|s| mask_push_url(&s.url) == target.url)
        {
            target.url = orig.url.clone();
        }
    }
}

/// Masks a URL's password and secret query values.
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
                let secret = SECRET_QUERY_KEYS.contains(&k.to_ascii_lowercase().as_str());
                (
                    k.into_owned(),
                    if secret {
                        MASK.to_owned()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let text = url.to_string();
    // Keep the mask readable rather than percent-encoded.
    text.replace("%2A%2A%2A%2A", MASK)
}

/// Masks a push URL: its last path segment is the platform's stream key.
pub fn mask_push_url(raw: &str) -> String {
    let masked = mask_url(raw);
    let (head, query) = match masked.split_once('?') {
        Some((h, q)) => (h.to_owned(), Some(q.to_owned())),
        None => (masked.clone(), None),
    };
    let Some((prefix, last)) = head.rsplit_once('/') else {
        return masked;
    };
    if last.is_empty() || !prefix.contains("://") || prefix.ends_with(':') || prefix.ends_with('/')
    {
        return masked;
    }
    match query {
        Some(q) => format!("{prefix}/{MASK}?{q}"),
        None => format!("{prefix}/{MASK}"),
    }
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
            url: "rtmp://live.example.com/app/SECRET".into(),
            enabled: true,
            timeout_sec: 10,
            retry_timeout_sec: 5,
            limit: 0,
            comment: String::new(),
            profile: String::new(),
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
    fn push_url_forms() {
        assert_eq!(
            mask_push_url("rtmp://h/app/key?x=1"),
            "rtmp://h/app/****?x=1"
        );
        assert_eq!(mask_push_url("rtmp://h"), "rtmp://h");
    }
}
