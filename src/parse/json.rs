//! TEMPORARY stub, replaced by the parse module.
use std::borrow::Cow;
pub struct AppLog<'a> {
    pub object: &'a [u8],
    pub message: Option<Cow<'a, str>>,
    pub level: Option<Cow<'a, str>>,
    pub time: Option<Cow<'a, str>>,
}
pub fn parse(message: &[u8]) -> Option<AppLog<'_>> {
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(message).ok()?;
    let get = |k: &[&str]| {
        k.iter().find_map(|k| {
            v.get(*k)
                .and_then(|x| x.as_str())
                .map(|s| Cow::Owned(s.to_string()))
        })
    };
    Some(AppLog {
        object: message.trim_ascii(),
        message: get(&["msg", "message"]),
        level: get(&["level", "severity"]),
        time: get(&["time"]),
    })
}
