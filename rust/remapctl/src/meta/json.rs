//! JSON form of a metadata state, with stable field names (`remapctl meta dump`,
//! `remapctl meta restore`, `remapctl meta check --json`).

use remap_core::meta::identity::{parse_identity, IdentityText};
use remap_core::meta::{
    self, Config, Decoded, Fingerprint, ScanCheckpoint, SpareInfo, State, CONFIG_FLAG_FAILED,
};
use remap_core::remap_table::{Entry, NO_MIRROR, PENDING, REMAPPED};
use remap_core::uuid::UuidText;
use serde::{Deserialize, Serialize};

/// A whole state.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dump {
    /// On-disk format version (1).
    pub format_version: u32,
    /// Setup UUID.
    pub uuid: String,
    /// Commit counter.
    pub version: u64,
    /// Copy the state was read from (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<usize>,
    /// The spare the state was read from: the record of `spares` its copies name. A
    /// `restore` writes the copies as that spare's (the first record's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spare_uuid: Option<String>,
    /// Main-device fingerprint.
    pub fingerprint: JFingerprint,
    /// Configuration.
    pub config: JConfig,
    /// Spare list.
    pub spares: Vec<JSpare>,
    /// Scan checkpoint.
    pub scan: JScan,
    /// Entry counts (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<JCounts>,
    /// Remapped and pending blocks, sorted by block.
    pub entries: Vec<JEntry>,
}

/// Fingerprint.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JFingerprint {
    /// Main device size in sectors.
    pub main_sectors: u64,
    /// Logical block size.
    pub logical_block_bytes: u32,
    /// Physical block size.
    pub physical_block_bytes: u32,
    /// Identity of the main device: `none`, `t10:<hex>`, `eui64:<hex>`, `naa:<hex>`,
    /// `partuuid:<uuid>` (or `invalid:<hex>` for bytes that follow no encoding).
    pub identity: String,
}

/// Configuration.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JConfig {
    /// Remap block size.
    pub block_bytes: u32,
    /// Read retries.
    pub read_retries: u32,
    /// Target length in sectors.
    pub target_sectors: u64,
    /// Feature flags.
    pub flags: u64,
    /// Set (informational) when `flags` has the failed bit: the target was in mode
    /// `failed` when this state was committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<bool>,
    /// Scan interval.
    pub scan_interval_s: u32,
    /// Scan rate.
    pub scan_rate_kibs: u32,
    /// Prediction interval.
    pub predict_interval_s: u32,
    /// Lowest alert level raised as an event.
    pub alert_min_level: u32,
}

/// One spare.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JSpare {
    /// Spare UUID.
    pub uuid: String,
    /// Size in sectors.
    pub sectors: u64,
    /// First data sector.
    pub data_start: u64,
    /// Data blocks.
    pub data_blocks: u64,
    /// Role.
    pub role: u8,
    /// Priority.
    pub priority: u8,
    /// State.
    pub state: u8,
    /// Logical block size of the spare device in bytes (format 2; absent in a dump of
    /// a format 1 copy, and then taken from the device written to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical_block_bytes: Option<u32>,
}

/// Scan checkpoint.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JScan {
    /// Next block to scan.
    pub cursor_block: u64,
    /// Completed passes.
    pub passes: u64,
    /// End of the last pass (Unix seconds).
    pub last_pass_end_s: u64,
}

/// Entry counts.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JCounts {
    /// Remapped blocks.
    pub remapped: usize,
    /// Remapped blocks with lost sectors.
    pub lost: usize,
    /// Pending blocks.
    pub pending: usize,
    /// Records of single remapped blocks.
    #[serde(default)]
    pub singles: usize,
    /// Records of runs (neighbouring blocks on neighbouring spare blocks).
    #[serde(default)]
    pub runs: usize,
    /// Remapped blocks with a second copy (`redundancy 2`; left out when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mirrors: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One special block.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JEntry {
    /// Block number.
    pub block: u64,
    /// `remapped` or `pending`.
    pub state: String,
    /// Spare index (remapped only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spare: Option<u8>,
    /// Spare data block (remapped only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spare_block: Option<u64>,
    /// Sectors of the block whose data is lost (remapped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_sectors: Vec<u8>,
    /// Spare index of the second copy (`redundancy 2`; remapped only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<u8>,
    /// Spare data block of the second copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_block: Option<u64>,
}

/// Report of `check --json`.
#[derive(Serialize)]
pub struct CheckReport {
    /// `clean`, `needs repair: ...`, `blank ...` or `refused: ...`.
    pub result: String,
    /// Selected version.
    pub version: Option<u64>,
    /// Setup UUID.
    pub uuid: Option<String>,
    /// The judge's refusal of the selected state (the text the kernel gives).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// Whether the selected state records mode `failed`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    /// Per-copy verdicts.
    pub copies: Vec<CopyReport>,
}

/// One copy's verdict.
#[derive(Serialize)]
pub struct CopyReport {
    /// Copy index.
    pub index: usize,
    /// First sector.
    pub sector: u64,
    /// Whether the copy holds the selected state.
    pub ok: bool,
    /// Diagnosis.
    pub status: String,
}

/// A UUID as `8-4-4-4-12` hex.
pub fn uuid_string(u: &[u8; 16]) -> String {
    UuidText(u).to_string()
}

/// Parses a UUID (hex, dashes optional).
pub fn parse_uuid(s: &str) -> Result<[u8; 16], String> {
    let hex: String = s.chars().filter(|&c| c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("bad UUID: {s:?}"));
    }
    let mut u = [0u8; 16];
    for (i, b) in u.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(u)
}

/// An owned state, for encoding.
pub struct Owned {
    /// Setup UUID.
    pub uuid: [u8; 16],
    /// Commit counter.
    pub version: u64,
    /// Fingerprint.
    pub fingerprint: Fingerprint,
    /// Configuration.
    pub config: Config,
    /// Spares.
    pub spares: Vec<SpareInfo>,
    /// Entries.
    pub entries: Vec<Entry>,
    /// Scan checkpoint.
    pub scan: ScanCheckpoint,
    /// The spare the copies are written for (a record of `spares`; `None`: the first).
    pub me: Option<[u8; 16]>,
}

impl Owned {
    /// Copies a decoded state.
    pub fn from_decoded(d: &Decoded<'_>) -> Owned {
        Owned {
            uuid: d.uuid,
            version: d.version,
            fingerprint: d.fingerprint,
            config: d.config,
            spares: (0..d.spare_count()).filter_map(|i| d.spare(i)).collect(),
            entries: d.entries().collect(),
            scan: d.scan,
            me: (d.spare_uuid != [0; 16]).then_some(d.spare_uuid),
        }
    }

    /// The record the copies are written for: `me` when the list holds it, else the
    /// first.
    pub fn my_record(&self) -> Option<&SpareInfo> {
        self.me
            .and_then(|m| self.spares.iter().find(|s| s.uuid == m))
            .or_else(|| self.spares.first())
    }

    /// The state to encode.
    pub fn state(&self) -> State<'_> {
        State {
            uuid: self.uuid,
            version: self.version,
            fingerprint: self.fingerprint,
            config: self.config,
            spares: &self.spares,
            entries: &self.entries,
            scan: self.scan,
        }
    }
}

fn mask_to_list(m: &[u64; 2]) -> Vec<u8> {
    (0u8..128)
        .filter(|&s| m[usize::from(s / 64)] & (1 << (s % 64)) != 0)
        .collect()
}

impl Dump {
    /// The JSON form of a decoded state.
    pub fn from_decoded(d: &Decoded<'_>, copy: usize) -> Dump {
        let f = &d.fingerprint;
        let c = &d.config;
        let (remapped, lost, pending) = d.counts();
        Dump {
            format_version: d.format_version,
            uuid: uuid_string(&d.uuid),
            version: d.version,
            copy: Some(copy),
            spare_uuid: (d.spare_uuid != [0; 16]).then(|| uuid_string(&d.spare_uuid)),
            fingerprint: JFingerprint {
                main_sectors: f.main_sectors,
                logical_block_bytes: f.logical_block_bytes,
                physical_block_bytes: f.physical_block_bytes,
                identity: IdentityText(&f.identity).to_string(),
            },
            config: JConfig {
                block_bytes: c.block_bytes,
                read_retries: c.read_retries,
                target_sectors: c.target_sectors,
                flags: c.flags,
                failed: (c.flags & CONFIG_FLAG_FAILED != 0).then_some(true),
                scan_interval_s: c.scan_interval_s,
                scan_rate_kibs: c.scan_rate_kibs,
                predict_interval_s: c.predict_interval_s,
                alert_min_level: c.alert_min_level,
            },
            spares: (0..d.spare_count())
                .filter_map(|i| d.spare(i))
                .map(|s| JSpare {
                    uuid: uuid_string(&s.uuid),
                    sectors: s.sectors,
                    data_start: s.data_start,
                    data_blocks: s.data_blocks,
                    role: s.role,
                    priority: s.priority,
                    state: s.state,
                    logical_block_bytes: (s.logical_block_bytes != 0)
                        .then_some(s.logical_block_bytes),
                })
                .collect(),
            scan: JScan {
                cursor_block: d.scan.cursor_block,
                passes: d.scan.passes,
                last_pass_end_s: d.scan.last_pass_end_s,
            },
            counts: Some(JCounts {
                remapped,
                lost,
                pending,
                singles: d.records().0,
                runs: d.records().1,
                mirrors: d.mirrors().count(),
            }),
            entries: d
                .entries()
                .map(|e| JEntry {
                    block: e.block,
                    state: if e.state == REMAPPED {
                        "remapped"
                    } else {
                        "pending"
                    }
                    .to_string(),
                    spare: (e.state == REMAPPED).then_some(e.spare),
                    spare_block: (e.state == REMAPPED).then_some(e.spare_block),
                    lost_sectors: mask_to_list(&e.lost),
                    mirror: e.has_mirror().then_some(e.mirror),
                    mirror_block: e.has_mirror().then_some(e.mirror_block),
                })
                .collect(),
        }
    }

    /// The state this JSON describes.
    pub fn into_owned(self) -> Result<Owned, String> {
        if self.format_version != meta::FORMAT_VERSION && self.format_version != meta::FORMAT_V1 {
            return Err(format!(
                "format_version {} is not supported",
                self.format_version
            ));
        }
        let identity = parse_identity(self.fingerprint.identity.as_bytes()).ok_or_else(|| {
            format!(
                "bad identity {:?} (none, t10:<hex>, eui64:<hex>, naa:<hex> or partuuid:<uuid>)",
                self.fingerprint.identity
            )
        })?;
        if let Some(f) = self.config.failed {
            if f != (self.config.flags & CONFIG_FLAG_FAILED != 0) {
                return Err("config: \"failed\" disagrees with the failed bit of \"flags\"".into());
            }
        }
        let mut entries = Vec::with_capacity(self.entries.len());
        for e in self.entries {
            let (state, spare, spare_block) = match (e.state.as_str(), e.spare, e.spare_block) {
                ("remapped", Some(s), Some(b)) => (REMAPPED, s, b),
                ("remapped", _, _) => {
                    return Err(format!(
                        "block {}: remapped without spare and spare_block",
                        e.block
                    ))
                }
                ("pending", None, None) if e.lost_sectors.is_empty() => (PENDING, 0, 0),
                ("pending", _, _) => {
                    return Err(format!(
                        "block {}: pending blocks have no spare location",
                        e.block
                    ))
                }
                (s, _, _) => return Err(format!("block {}: unknown state {s:?}", e.block)),
            };
            let mut lost = [0u64; 2];
            for s in e.lost_sectors {
                if s >= 128 {
                    return Err(format!("block {}: lost sector {s} out of range", e.block));
                }
                lost[usize::from(s / 64)] |= 1 << (s % 64);
            }
            let (mirror, mirror_block) = match (state, e.mirror, e.mirror_block) {
                (_, None, None) => (NO_MIRROR, 0),
                (REMAPPED, Some(m), Some(b)) if m != NO_MIRROR => (m, b),
                _ => {
                    return Err(format!(
                        "block {}: a second copy needs a remapped block, mirror and mirror_block",
                        e.block
                    ))
                }
            };
            entries.push(Entry {
                block: e.block,
                state,
                spare,
                spare_block,
                lost,
                mirror,
                mirror_block,
            });
        }
        let mut spares = Vec::new();
        for s in self.spares {
            spares.push(SpareInfo {
                uuid: parse_uuid(&s.uuid)?,
                sectors: s.sectors,
                data_start: s.data_start,
                data_blocks: s.data_blocks,
                role: s.role,
                priority: s.priority,
                state: s.state,
                logical_block_bytes: s.logical_block_bytes.unwrap_or(0),
            });
        }
        let c = self.config;
        Ok(Owned {
            uuid: parse_uuid(&self.uuid)?,
            version: self.version,
            fingerprint: Fingerprint {
                main_sectors: self.fingerprint.main_sectors,
                logical_block_bytes: self.fingerprint.logical_block_bytes,
                physical_block_bytes: self.fingerprint.physical_block_bytes,
                identity,
            },
            config: Config {
                block_bytes: c.block_bytes,
                read_retries: c.read_retries,
                target_sectors: c.target_sectors,
                flags: c.flags,
                scan_interval_s: c.scan_interval_s,
                scan_rate_kibs: c.scan_rate_kibs,
                predict_interval_s: c.predict_interval_s,
                alert_min_level: c.alert_min_level,
            },
            spares,
            entries,
            scan: ScanCheckpoint {
                cursor_block: self.scan.cursor_block,
                passes: self.scan.passes,
                last_pass_end_s: self.scan.last_pass_end_s,
            },
            me: match &self.spare_uuid {
                Some(u) => Some(parse_uuid(u)?),
                None => None,
            },
        })
    }
}
