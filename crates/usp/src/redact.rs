//! Hand-written `Debug` for generated types that can carry secrets.
//!
//! `build.rs` tells prost-build not to derive `Debug` for `usp.Operate`, because its
//! `input_args` hold the firmware download `Password`. Logging a `Msg` with `{:?}` therefore
//! shows every argument except that one.

use std::fmt;

use crate::pb::msg::Operate;

/// Input or output argument names whose values are never shown.
pub(crate) const SECRET_ARGS: [&str; 1] = ["Password"];

/// Formats a string map, replacing the values of [`SECRET_ARGS`].
pub(crate) struct RedactedArgs<'a, I>(pub(crate) I)
where
    I: IntoIterator<Item = (&'a String, &'a String)> + Clone;

impl<'a, I> fmt::Debug for RedactedArgs<'a, I>
where
    I: IntoIterator<Item = (&'a String, &'a String)> + Clone,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.0.clone() {
            if SECRET_ARGS.contains(&name.as_str()) {
                map.entry(name, &"<redacted>");
            } else {
                map.entry(name, value);
            }
        }
        map.finish()
    }
}

impl fmt::Debug for Operate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operate")
            .field("command", &self.command)
            .field("command_key", &self.command_key)
            .field("send_resp", &self.send_resp)
            .field("input_args", &RedactedArgs(self.input_args.iter()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operate_debug_hides_the_password_but_shows_other_args() {
        let mut op = Operate {
            command: "Device.DeviceInfo.FirmwareImage.2.Download()".into(),
            ..Default::default()
        };
        op.input_args.insert("Password".into(), "hunter2".into());
        op.input_args.insert("Username".into(), "admin".into());

        let text = format!("{op:?}");

        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("\"Password\": \"<redacted>\""), "{text}");
        assert!(text.contains("\"Username\": \"admin\""), "{text}");
    }
}
