//! Escaping for FFmpeg's filter graphs (SPEC §Security "Filter-graph safety").
//!
//! FFmpeg reads a filter graph in two passes, each with `av_get_token`'s rules (a backslash
//! takes the next character literally, `'…'` quotes, unescaped leading and trailing white
//! space is dropped): the graph parser splits filters at `[ ] , ;` and unescapes once, then
//! the filter's option parser splits `key=value` pairs at `:` and unescapes again. A value
//! is therefore escaped for the option level first and the result for the graph level, with
//! a backslash before every character either pass treats specially, so the value arrives
//! byte for byte and no character in it can end an option, a filter or a chain.

/// Escapes `value` for use as one filter option value inside a filter graph.
///
/// ```
/// use tributary_domain::ffmpeg::filter_value;
///
/// assert_eq!(filter_value("/fonts/a.ttf"), "/fonts/a.ttf");
/// assert_eq!(filter_value("a:b"), r"a\\:b");
/// assert_eq!(filter_value("a,b"), r"a\,b");
/// ```
pub fn filter_value(value: &str) -> String {
    escape(&escape(value, OPTION_SPECIAL), GRAPH_SPECIAL)
}

/// A backslash before every character of `special` and every white-space character.
fn escape(value: &str, special: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if special.contains(c) || c.is_whitespace() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What the option parser treats specially: escapes, quotes and the pair separator.
const OPTION_SPECIAL: &str = "\\':";

/// What the graph parser treats specially: escapes, quotes, link labels and separators.
const GRAPH_SPECIAL: &str = "\\'[],;";
