//! Shared by the parser targets: input bytes split into arguments as dm core splits a
//! table line or a message (on whitespace), at most 64 of them.

pub fn words(data: &[u8]) -> Vec<&[u8]> {
    data.split(|c| c.is_ascii_whitespace())
        .filter(|a| !a.is_empty())
        .take(64)
        .collect()
}
