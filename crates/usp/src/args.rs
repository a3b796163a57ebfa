//! Reading typed values out of USP string maps (command arguments and event parameters).
//!
//! USP carries every argument as a string; TR-106 defines how booleans and unsigned integers
//! are spelled. Errors name the argument and the offending value.

use std::collections::BTreeMap;

use crate::error::UspError;

/// The value of a required argument.
pub(crate) fn required<'a>(
    args: &'a BTreeMap<String, String>,
    name: &str,
) -> Result<&'a str, UspError> {
    args.get(name)
        .map(String::as_str)
        .ok_or_else(|| UspError::MissingArgument {
            arg: name.to_owned(),
        })
}

/// The value of an optional argument, owned.
pub(crate) fn optional(args: &BTreeMap<String, String>, name: &str) -> Option<String> {
    args.get(name).cloned()
}

/// A TR-106 boolean: `true`, `false`, `1` or `0`.
pub(crate) fn parse_bool(name: &str, value: &str) -> Result<bool, UspError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(invalid(name, value, "a boolean (true, false, 1 or 0)")),
    }
}

/// A TR-106 unsignedInt.
pub(crate) fn parse_u32(name: &str, value: &str) -> Result<u32, UspError> {
    value
        .parse()
        .map_err(|_| invalid(name, value, "an unsigned 32-bit integer"))
}

/// A TR-106 unsignedLong.
pub(crate) fn parse_u64(name: &str, value: &str) -> Result<u64, UspError> {
    value
        .parse()
        .map_err(|_| invalid(name, value, "an unsigned 64-bit integer"))
}

/// The TR-106 spelling of a boolean.
pub(crate) fn bool_text(value: bool) -> String {
    if value { "true" } else { "false" }.to_owned()
}

fn invalid(name: &str, value: &str, expected: &'static str) -> UspError {
    UspError::InvalidArgument {
        arg: name.to_owned(),
        value: value.to_owned(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_accept_words_and_digits() {
        assert!(parse_bool("AutoActivate", "true").unwrap());
        assert!(parse_bool("AutoActivate", "1").unwrap());
        assert!(!parse_bool("AutoActivate", "false").unwrap());
        assert!(!parse_bool("AutoActivate", "0").unwrap());
    }

    #[test]
    fn a_bad_boolean_names_the_argument_and_value() {
        let err = parse_bool("FirmwareUpdated", "maybe").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"maybe\" for argument FirmwareUpdated: \
             expected a boolean (true, false, 1 or 0)"
        );
    }

    #[test]
    fn negative_numbers_are_not_unsigned() {
        let err = parse_u32("FaultCode", "-1").unwrap_err();
        assert!(matches!(
            err,
            UspError::InvalidArgument { ref arg, ref value, .. } if arg == "FaultCode" && value == "-1"
        ));
    }
}
