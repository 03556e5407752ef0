//! TEMPORARY stub, replaced by the parse module.
#[derive(serde::Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub parsers: Vec<Builtin>,
    #[serde(default)]
    pub start_pattern: Option<String>,
}
#[derive(serde::Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Builtin {
    Go,
    Java,
    Python,
}
#[derive(Debug, thiserror::Error)]
#[error("bad multiline")]
pub struct MultilineError;
#[derive(Debug)]
pub struct Rules;
impl Rules {
    pub fn new(_: &Config) -> Result<Rules, MultilineError> {
        Ok(Rules)
    }
}
