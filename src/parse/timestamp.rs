//! TEMPORARY stub, replaced by the parse module.
pub fn utc_date(ts: &[u8]) -> Option<(i32, u32, u32)> {
    let s = std::str::from_utf8(ts.get(..10)?).ok()?;
    Some((
        s[0..4].parse().ok()?,
        s[5..7].parse().ok()?,
        s[8..10].parse().ok()?,
    ))
}
pub fn is_rfc3339(ts: &[u8]) -> bool {
    ts.len() >= 20 && ts[4] == b'-' && ts[10] == b'T'
}
