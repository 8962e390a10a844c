//! Stream names as peers send them: `app` plus `name?query`, split into a path and the query.

/// A publish or play target, split once at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `app/name`, queries removed, surrounding slashes trimmed (`live/cam`).
    pub(crate) path: String,
    /// The query of the name (or, failing that, of the app) without its `?`: may hold secrets.
    pub(crate) query: Option<String>,
}

impl Target {
    /// Splits RTMP's `app` and stream name (`live`, `cam?key=s3cret`).
    ///
    /// Most encoders put the query on the name; some put it on the app (`live?key=…` with the
    /// key typed into the server URL), so the app's query is used when the name has none.
    pub(crate) fn rtmp(app: &str, stream_name: &str) -> Self {
        let (app, app_query) = split_query(app);
        let (name, name_query) = split_query(stream_name);
        let app = app.trim_matches('/');
        let name = name.trim_matches('/');
        let path = match (app.is_empty(), name.is_empty()) {
            (false, false) => format!("{app}/{name}"),
            (true, _) => name.to_owned(),
            (false, true) => app.to_owned(),
        };
        let query = name_query
            .or(app_query)
            .filter(|q| !q.is_empty())
            .map(str::to_owned);
        Self { path, query }
    }

    /// The value of query parameter `name` (the first one, not percent-decoded).
    pub(crate) fn param(&self, name: &str) -> Option<String> {
        self.query
            .as_deref()?
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    }
}

fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_split_off_the_name() {
        let t = Target::rtmp("live", "cam?key=s3cret&x=1");
        assert_eq!(t.path, "live/cam");
        assert_eq!(t.query.as_deref(), Some("key=s3cret&x=1"));
        assert_eq!(t.param("key").as_deref(), Some("s3cret"));
        assert_eq!(t.param("x").as_deref(), Some("1"));
        assert_eq!(t.param("sig"), None);
    }

    #[test]
    fn multi_segment_codes_and_app_queries() {
        let t = Target::rtmp("sports/", "ch1");
        assert_eq!((t.path.as_str(), t.query), ("sports/ch1", None));
        let t = Target::rtmp("live?key=k", "cam");
        assert_eq!(t.path, "live/cam");
        assert_eq!(t.param("key").as_deref(), Some("k"));
        let t = Target::rtmp("live?key=app", "cam?key=name");
        assert_eq!(t.param("key").as_deref(), Some("name"));
        let t = Target::rtmp("", "cam?");
        assert_eq!((t.path.as_str(), t.query), ("cam", None));
        let t = Target::rtmp("live", "cam?flag");
        assert_eq!(t.param("flag").as_deref(), Some(""));
    }
}
