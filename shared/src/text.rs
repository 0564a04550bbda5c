//! Small text helpers shared by logs, errors and (later) message rendering.

/// At most `max` characters of `s`, cut at a character boundary, with `…` when cut.
/// Keeps error lines and logs readable when an input carries a megabyte-long string.
pub fn excerpt(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// [`excerpt`] with control characters escaped: safe to echo untrusted input into one log line.
pub fn shown(s: &str, max: usize) -> String {
    excerpt(s, max).escape_debug().to_string()
}

/// `s` cut to at most `max` characters, with `…` when cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let keep = max.saturating_sub(1);
    let end = s
        .char_indices()
        .nth(keep)
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    format!("{}…", &s[..end])
}

/// Said wherever a drain could not be marked: what it means, and what to do.
pub const UNMARKED_DRAIN: &str = "DRAINING, but fleetguard's mark could not be written (ECS allows 10 custom attributes a container instance, or the call failed twice): fleetguard will not set it ACTIVE again when it is back; set it ACTIVE by hand then";

#[cfg(test)]
mod tests {
    use super::{excerpt, shown};

    #[test]
    fn cuts_at_char_boundaries() {
        assert_eq!(excerpt("abc", 5), "abc");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("ééé", 2), "éé…");
        assert_eq!(excerpt("", 0), "");
        assert_eq!(shown("a\nb", 10), "a\\nb");
    }
}
