//! TEMPORARY stub, replaced by the parse module.
use super::*;
pub fn parse(line: &[u8]) -> Result<Record<'_>, ParseError> {
    #[derive(serde::Deserialize)]
    struct D {
        log: String,
        stream: String,
        time: String,
    }
    let d: D = serde_json::from_slice(line).map_err(|_| ParseError::Docker("json"))?;
    let start = memchr::memmem::find(line, d.time.as_bytes()).ok_or(ParseError::Docker("time"))?;
    let ts = &line[start..start + d.time.len()];
    let partial = !d.log.ends_with('\n');
    let msg = d.log.trim_end_matches('\n').as_bytes().to_vec();
    Ok(Record {
        timestamp: ts,
        stream: if d.stream == "stderr" {
            Stream::Stderr
        } else {
            Stream::Stdout
        },
        partial,
        message: Cow::Owned(msg),
    })
}
