//! Text form of 16-byte UUIDs (the setup UUID on the table line, in logs and in
//! `remapctl`): read from 32 hex digits or the canonical 8-4-4-4-12 form, always
//! written in the canonical form, lowercase.

use super::error::CoreError;
use core::fmt;

/// Hex digits of a UUID without dashes.
const HEX_DIGITS: usize = 32;
/// Length of the canonical form.
const CANONICAL_LEN: usize = 36;
/// Positions of the dashes in the canonical form.
const DASHES: [usize; 4] = [8, 13, 18, 23];

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses a UUID: exactly 32 hex digits, or the canonical form with dashes at
/// positions 8, 13, 18 and 23 (hex digits in either case). Anything else, including
/// dashes elsewhere, is [`CoreError::BadUuid`].
pub fn parse_uuid(s: &[u8]) -> Result<[u8; 16], CoreError> {
    let dashed = match s.len() {
        HEX_DIGITS => false,
        CANONICAL_LEN => true,
        _ => return Err(CoreError::BadUuid),
    };
    let mut out = [0u8; 16];
    let mut n = 0usize;
    for (i, &c) in s.iter().enumerate() {
        if dashed && DASHES.contains(&i) {
            if c != b'-' {
                return Err(CoreError::BadUuid);
            }
            continue;
        }
        let v = hex_value(c).ok_or(CoreError::BadUuid)?;
        let byte = out.get_mut(n / 2).ok_or(CoreError::BadUuid)?;
        *byte = if n % 2 == 0 { v << 4 } else { *byte | v };
        n += 1;
    }
    if n != HEX_DIGITS {
        return Err(CoreError::BadUuid);
    }
    Ok(out)
}

/// Displays a UUID in the canonical 8-4-4-4-12 form, lowercase.
#[derive(Debug, Clone, Copy)]
pub struct UuidText<'a>(pub &'a [u8; 16]);

impl fmt::Display for UuidText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: [u8; 16] = [
        0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x49, 0x78, 0x86, 0x95, 0xa4, 0xb3, 0xc2, 0xd1, 0xe0,
        0xf0,
    ];

    #[test]
    fn canonical_and_plain_forms_parse() {
        assert_eq!(parse_uuid(b"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0"), Ok(U));
        assert_eq!(parse_uuid(b"0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F0"), Ok(U));
        assert_eq!(parse_uuid(b"0f1e2d3c4b5a49788695a4b3c2d1e0f0"), Ok(U));
        assert_eq!(
            UuidText(&U).to_string(),
            "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            &b""[..],
            b"0f1e2d3c",
            b"0f1e2d3c4b5a49788695a4b3c2d1e0f",
            b"0f1e2d3c4b5a49788695a4b3c2d1e0f00",
            b"0f1e2d3c4b5a49788695a4b3c2d1e0fg",
            b"0f1e2d3c-4b5a-4978-8695a-4b3c2d1e0f0",
            b"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0-",
            b"0f1e2d3c+4b5a-4978-8695-a4b3c2d1e0f0",
            b"-0f1e2d3c4b5a49788695a4b3c2d1e0f0",
            b"{0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0}",
            b"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f ",
        ] {
            assert_eq!(
                parse_uuid(bad),
                Err(CoreError::BadUuid),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
    }

    #[test]
    fn text_round_trips() {
        let mut u = [0u8; 16];
        for seed in 0u8..=255 {
            for (i, b) in u.iter_mut().enumerate() {
                *b = seed.wrapping_mul(31).wrapping_add(i as u8 * 17);
            }
            let s = UuidText(&u).to_string();
            assert_eq!(parse_uuid(s.as_bytes()), Ok(u));
        }
    }
}
