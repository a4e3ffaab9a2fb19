//! The main device's identity, as the fingerprint records it (32 bytes).
//!
//! Byte 0 is the kind ([`IdentityKind`]), byte 1 the length of the identifier, then
//! the identifier's bytes (at most [`IDENTITY_MAX_ID`]) and zeros up to
//! [`IDENTITY_LEN`]. Kinds 1 to 3 are the designator types of the kernel's
//! `enum blk_unique_id` (include/linux/blkdev.h, Linux 6.12), i.e. what
//! `block_device_operations.get_unique_id` returns for sd and nvme disks; kind 4 is
//! a partition's PARTUUID; kind 0, all 32 bytes zero, means the kernel had no
//! identifier for the device. [`identity_parts`] is the only reader of the encoding
//! and refuses anything else (unknown kind, bad length, non-zero padding).

use super::super::uuid::UuidText;
use super::IDENTITY_LEN;
use core::fmt;

/// Most identifier bytes an identity holds (32 less kind and length).
pub const IDENTITY_MAX_ID: usize = IDENTITY_LEN - 2;

/// The identity of a device whose kernel driver reports none.
pub const IDENTITY_NONE: [u8; IDENTITY_LEN] = [0; IDENTITY_LEN];

/// What kind of identifier an identity holds (byte 0).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    /// No identifier: all 32 bytes are zero.
    None = 0,
    /// SCSI T10 vendor identification designator (`BLK_UID_T10`).
    T10 = 1,
    /// EUI-64 designator (`BLK_UID_EUI64`; an NVMe EUI-64 or NGUID).
    Eui64 = 2,
    /// NAA designator (`BLK_UID_NAA`; a SCSI WWN).
    Naa = 3,
    /// A GPT partition's PARTUUID (16 bytes, as the kernel stores it).
    PartUuid = 4,
}

impl IdentityKind {
    /// The kind recorded as `v`, or `None` for a value this version does not know.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::None),
            1 => Some(Self::T10),
            2 => Some(Self::Eui64),
            3 => Some(Self::Naa),
            4 => Some(Self::PartUuid),
            _ => None,
        }
    }

    /// The prefix of the text form (`naa:...`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::T10 => "t10",
            Self::Eui64 => "eui64",
            Self::Naa => "naa",
            Self::PartUuid => "partuuid",
        }
    }
}

impl TryFrom<u8> for IdentityKind {
    type Error = u8;

    fn try_from(v: u8) -> Result<Self, u8> {
        Self::from_u8(v).ok_or(v)
    }
}

/// The identity of a device whose driver returned `id` from `get_unique_id` for the
/// designator type `kind` (1 T10, 2 EUI-64, 3 NAA). `None` for another kind, an empty
/// identifier or one longer than [`IDENTITY_MAX_ID`] bytes.
pub fn identity_from_unique_id(kind: u8, id: &[u8]) -> Option<[u8; IDENTITY_LEN]> {
    match IdentityKind::from_u8(kind)? {
        IdentityKind::T10 | IdentityKind::Eui64 | IdentityKind::Naa => {}
        IdentityKind::None | IdentityKind::PartUuid => return None,
    }
    if id.is_empty() || id.len() > IDENTITY_MAX_ID {
        return None;
    }
    let mut out = IDENTITY_NONE;
    let (head, rest) = out.split_at_mut(2);
    head.copy_from_slice(&[kind, id.len() as u8]);
    rest.get_mut(..id.len())?.copy_from_slice(id);
    Some(out)
}

/// The identity of a partition whose PARTUUID is `uuid`.
pub fn identity_from_partuuid(uuid: &[u8; 16]) -> [u8; IDENTITY_LEN] {
    let mut out = IDENTITY_NONE;
    for (o, &b) in out
        .iter_mut()
        .zip([IdentityKind::PartUuid as u8, 16].iter().chain(uuid.iter()))
    {
        *o = b;
    }
    out
}

/// The kind and identifier bytes of a well-formed identity; `None` when the bytes do
/// not follow the encoding.
pub fn identity_parts(id: &[u8; IDENTITY_LEN]) -> Option<(IdentityKind, &[u8])> {
    let (&kind, rest) = id.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let kind = IdentityKind::from_u8(kind)?;
    let len = usize::from(len);
    let ok_len = match kind {
        IdentityKind::None => len == 0,
        IdentityKind::PartUuid => len == 16,
        IdentityKind::T10 | IdentityKind::Eui64 | IdentityKind::Naa => {
            (1..=IDENTITY_MAX_ID).contains(&len)
        }
    };
    if !ok_len {
        return None;
    }
    let (bytes, pad) = rest.split_at_checked(len)?;
    if pad.iter().any(|&b| b != 0) {
        return None;
    }
    Some((kind, bytes))
}

/// Whether `id` follows the encoding.
pub fn identity_is_valid(id: &[u8; IDENTITY_LEN]) -> bool {
    identity_parts(id).is_some()
}

/// Displays an identity for logs and `remapctl`: `none`, `t10:<hex>`,
/// `eui64:<hex>`, `naa:<hex>`, `partuuid:<8-4-4-4-12>`, or `invalid:<64 hex digits>`
/// for bytes that do not follow the encoding. [`parse_identity`] reads it back.
#[derive(Debug, Clone, Copy)]
pub struct IdentityText<'a>(pub &'a [u8; IDENTITY_LEN]);

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

impl fmt::Display for IdentityText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match identity_parts(self.0) {
            Some((IdentityKind::None, _)) => f.write_str("none"),
            Some((IdentityKind::PartUuid, b)) => match <&[u8; 16]>::try_from(b) {
                Ok(u) => write!(f, "partuuid:{}", UuidText(u)),
                Err(_) => f.write_str("invalid"),
            },
            Some((kind, b)) => {
                write!(f, "{}:", kind.name())?;
                write_hex(f, b)
            }
            None => {
                f.write_str("invalid:")?;
                write_hex(f, self.0)
            }
        }
    }
}

fn hex_into(s: &[u8], out: &mut [u8]) -> Option<usize> {
    if s.len() % 2 != 0 || s.len() / 2 > out.len() {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    for (pair, o) in s.chunks_exact(2).zip(out.iter_mut()) {
        let (&hi, &lo) = (pair.first()?, pair.get(1)?);
        *o = (digit(hi)? << 4) | digit(lo)?;
    }
    Some(s.len() / 2)
}

/// Reads the text form of [`IdentityText`] back (hex digits in either case). `None`
/// for anything else, or for a `kind:` form whose identifier is empty or too long.
pub fn parse_identity(s: &[u8]) -> Option<[u8; IDENTITY_LEN]> {
    if s == b"none" {
        return Some(IDENTITY_NONE);
    }
    let colon = s.iter().position(|&c| c == b':')?;
    let (name, value) = (s.get(..colon)?, s.get(colon + 1..)?);
    if name == b"invalid" {
        let mut out = IDENTITY_NONE;
        return (hex_into(value, &mut out)? == IDENTITY_LEN).then_some(out);
    }
    if name == b"partuuid" {
        return super::super::uuid::parse_uuid(value)
            .ok()
            .map(|u| identity_from_partuuid(&u));
    }
    let kind = [IdentityKind::T10, IdentityKind::Eui64, IdentityKind::Naa]
        .into_iter()
        .find(|k| k.name().as_bytes() == name)?;
    let mut id = [0u8; IDENTITY_MAX_ID];
    let n = hex_into(value, &mut id)?;
    identity_from_unique_id(kind as u8, id.get(..n)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(id: &[u8; IDENTITY_LEN]) -> String {
        IdentityText(id).to_string()
    }

    #[test]
    fn kinds_match_the_kernels_designator_types() {
        // enum blk_unique_id in include/linux/blkdev.h (6.12).
        assert_eq!(IdentityKind::T10 as u8, 1);
        assert_eq!(IdentityKind::Eui64 as u8, 2);
        assert_eq!(IdentityKind::Naa as u8, 3);
        assert_eq!(IdentityKind::PartUuid as u8, 4);
        assert_eq!(IdentityKind::try_from(5), Err(5));
    }

    #[test]
    fn encoding_and_text() {
        let naa =
            identity_from_unique_id(3, &[0x50, 0x00, 0xc5, 0x00, 0xa1, 0xb2, 0xc3, 0xd4]).unwrap();
        assert_eq!(
            naa[..10],
            [3, 8, 0x50, 0x00, 0xc5, 0x00, 0xa1, 0xb2, 0xc3, 0xd4]
        );
        assert!(naa[10..].iter().all(|&b| b == 0));
        assert_eq!(text(&naa), "naa:5000c500a1b2c3d4");
        let eui = identity_from_unique_id(2, &[0xaa; 16]).unwrap();
        assert_eq!(text(&eui), format!("eui64:{}", "aa".repeat(16)));
        let t10 = identity_from_unique_id(1, b"ATA     QEMU HARDDISK").unwrap();
        assert_eq!(
            identity_parts(&t10),
            Some((IdentityKind::T10, &b"ATA     QEMU HARDDISK"[..]))
        );
        let p = identity_from_partuuid(&[0x11; 16]);
        assert_eq!(p[..2], [4, 16]);
        assert_eq!(text(&p), "partuuid:11111111-1111-1111-1111-111111111111");
        assert_eq!(text(&IDENTITY_NONE), "none");
        let mut bad = naa;
        bad[31] = 1;
        assert_eq!(
            text(&bad),
            format!("invalid:{}", {
                let mut s = String::new();
                for b in bad {
                    s += &format!("{b:02x}");
                }
                s
            })
        );
    }

    #[test]
    fn what_the_encoding_refuses() {
        assert_eq!(identity_from_unique_id(0, b"x"), None);
        assert_eq!(identity_from_unique_id(4, &[1; 16]), None);
        assert_eq!(identity_from_unique_id(5, b"x"), None);
        assert_eq!(identity_from_unique_id(3, b""), None);
        assert_eq!(identity_from_unique_id(3, &[1; IDENTITY_MAX_ID + 1]), None);
        assert!(identity_from_unique_id(3, &[1; IDENTITY_MAX_ID]).is_some());
        let mut id = IDENTITY_NONE;
        assert!(identity_is_valid(&id));
        id[1] = 1; // kind none with a length
        assert!(!identity_is_valid(&id));
        let mut id = IDENTITY_NONE;
        id[0] = 9; // unknown kind
        id[1] = 1;
        id[2] = 1;
        assert!(!identity_is_valid(&id));
        let mut id = identity_from_partuuid(&[1; 16]);
        id[1] = 15;
        assert!(!identity_is_valid(&id));
        let mut id = identity_from_unique_id(1, b"abc").unwrap();
        id[1] = 31;
        assert!(!identity_is_valid(&id));
        // Free text (what the field held before the encoding) is not an identity.
        let mut id = IDENTITY_NONE;
        id[..6].copy_from_slice(b"disk-7");
        assert!(!identity_is_valid(&id));
    }

    #[test]
    fn text_round_trips() {
        let mut ids = vec![
            IDENTITY_NONE,
            identity_from_partuuid(&[0xab; 16]),
            identity_from_unique_id(1, b"VENDOR  PRODUCT 1234").unwrap(),
            identity_from_unique_id(
                3,
                &[0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
            )
            .unwrap(),
            identity_from_unique_id(2, &[0xff; IDENTITY_MAX_ID]).unwrap(),
        ];
        let mut junk = IDENTITY_NONE;
        junk[..6].copy_from_slice(b"disk-7");
        ids.push(junk);
        for id in ids {
            let t = text(&id);
            assert_eq!(parse_identity(t.as_bytes()), Some(id), "{t}");
            let (kind, value) = t.split_once(':').unwrap_or((&t, ""));
            let upper = format!("{kind}:{}", value.to_uppercase());
            if !value.is_empty() {
                assert_eq!(parse_identity(upper.as_bytes()), Some(id), "{upper}");
            }
        }
        for bad in [
            &b""[..],
            b"None",
            b"naa:",
            b"naa:5",
            b"naa:zz",
            b"wwn:5000",
            b"partuuid:1234",
            b"invalid:00",
        ] {
            assert_eq!(
                parse_identity(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
