//! Topic helpers for the TR-369 MQTT binding.
//!
//! Over MQTT 3.1.1 there is no Response Topic property, so TR-369 has the sender append
//! `/reply-to=<topic>` to the topic it publishes to, with every `/` of the reply topic written
//! as `%2F` so that the suffix stays one topic level.

const REPLY_TO: &str = "/reply-to=";

/// `{topic}/reply-to={reply_to}`, with `/` in `reply_to` escaped as `%2F`.
pub fn topic_with_reply_to(topic: &str, reply_to: &str) -> String {
    format!("{topic}{REPLY_TO}{}", reply_to.replace('/', "%2F"))
}

/// Splits a received topic name into the topic proper and the unescaped reply-to topic, or
/// returns the whole name and `None` when it has no `reply-to=` last level.
pub fn split_reply_to(topic_name: &str) -> (&str, Option<String>) {
    match topic_name.rsplit_once(REPLY_TO) {
        Some((topic, escaped)) if !escaped.contains('/') => {
            (topic, Some(unescape_slashes(escaped)))
        }
        _ => (topic_name, None),
    }
}

fn unescape_slashes(escaped: &str) -> String {
    escaped.replace("%2F", "/").replace("%2f", "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_to_slashes_are_escaped() {
        assert_eq!(
            topic_with_reply_to("usp/agent/os::012345-SIM1", "usp/controller/wme"),
            "usp/agent/os::012345-SIM1/reply-to=usp%2Fcontroller%2Fwme"
        );
    }

    #[test]
    fn split_reverses_the_escaping() {
        let full = topic_with_reply_to("usp/agent/a", "usp/controller/c/x");

        let (topic, reply_to) = split_reply_to(&full);

        assert_eq!(topic, "usp/agent/a");
        assert_eq!(reply_to.as_deref(), Some("usp/controller/c/x"));
    }

    #[test]
    fn lowercase_escapes_are_unescaped_too() {
        let (topic, reply_to) = split_reply_to("t/reply-to=a%2fb");
        assert_eq!((topic, reply_to.as_deref()), ("t", Some("a/b")));
    }

    #[test]
    fn a_topic_without_suffix_has_no_reply_to() {
        assert_eq!(split_reply_to("usp/agent/a"), ("usp/agent/a", None));
    }

    #[test]
    fn a_reply_to_level_that_is_not_the_last_is_not_a_suffix() {
        let name = "usp/reply-to=x/agent";
        assert_eq!(split_reply_to(name), (name, None));
    }
}
