//! Errors of the parsing and unit layer, one variant per distinct diagnosis.
//!
//! The kernel glue maps each to an errno (always `EINVAL` for bad input) and uses
//! [`CoreError::as_str`] as `ti->error` / the DMERR text, so every failure class
//! has its own, stable message.

use core::ffi::CStr;
use core::fmt;

/// What went wrong while parsing or checking user input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreError {
    /// Fewer arguments than the grammar needs.
    MissingArgs,
    /// Arguments left over after the grammar was satisfied.
    TrailingArgs,
    /// A number has a character that is not a decimal digit (or is empty).
    BadNumber,
    /// A number does not fit its type.
    NumberOverflow,
    /// The optional-argument count is malformed or larger than what follows.
    BadOptCount,
    /// An option name that this version does not know.
    UnknownOption,
    /// The same option given twice.
    DuplicateOption,
    /// An option is missing its value.
    OptionMissingValue,
    /// `block_size` is not a power of two in [512, 65536].
    BadBlockSize,
    /// `block_size` is smaller than a device's logical block size.
    BlockSizeBelowLogical,
    /// A retry count above the supported maximum.
    BadRetries,
    /// A `max_remap_rate` above the supported maximum.
    BadRemapRate,
    /// A `scan_interval` above the supported maximum.
    BadScanInterval,
    /// A `scan_rate` outside the supported range.
    BadScanRate,
    /// A `proactive_remap` value other than `on` or `off`.
    BadSwitch,
    /// A `proactive_reserve` above 100 percent.
    BadProactiveReserve,
    /// A `proactive_region` above the supported maximum.
    BadProactiveRegion,
    /// A `redundancy` other than 1 or 2.
    BadRedundancy,
    /// The spare device is the main device.
    SpareIsMain,
    /// More spare devices than a pool holds.
    TooManySpares,
    /// One spare device named twice.
    DuplicateSpare,
    /// The target extends beyond the end of the main device.
    BeyondMainDevice,
    /// The spare is too small for the metadata area plus one data block.
    SpareTooSmall,
    /// The target length is zero or not a multiple of the block size.
    BadLength,
    /// Message verb unknown.
    UnknownVerb,
    /// Message argument count wrong for its verb.
    BadMessageArgs,
    /// A block number beyond the end of the target.
    BlockOutOfRange,
    /// Text does not fit the caller's output buffer.
    OutputFull,
    /// A `uuid` that is not 32 hex digits or the 8-4-4-4-12 form, or is all zero.
    BadUuid,
}

impl CoreError {
    /// Stable text for `ti->error`, DMERR and user-visible diagnostics, as a C string
    /// (dm core keeps a pointer to it).
    pub const fn as_cstr(self) -> &'static CStr {
        match self {
            Self::MissingArgs => c"Not enough arguments",
            Self::TrailingArgs => c"Too many arguments",
            Self::BadNumber => c"Invalid number",
            Self::NumberOverflow => c"Number out of range",
            Self::BadOptCount => c"Invalid number of optional arguments",
            Self::UnknownOption => c"Unknown optional argument",
            Self::DuplicateOption => c"Duplicate optional argument",
            Self::OptionMissingValue => c"Optional argument needs a value",
            Self::BadBlockSize => c"Invalid block_size (power of two, 512..65536 bytes)",
            Self::BlockSizeBelowLogical => c"block_size is below a device's logical block size",
            Self::BadRetries => c"Invalid read_retries (0..16)",
            Self::BadRemapRate => c"Invalid max_remap_rate (0..1000000)",
            Self::BadScanInterval => c"Invalid scan_interval (0..31536000 seconds)",
            Self::BadScanRate => c"Invalid scan_rate (64..4194304 KiB/s)",
            Self::BadSwitch => c"Invalid proactive_remap (on or off)",
            Self::BadProactiveReserve => c"Invalid proactive_reserve (0..100 percent)",
            Self::BadProactiveRegion => c"Invalid proactive_region (0..64 blocks)",
            Self::BadRedundancy => c"Invalid redundancy (1 or 2 copies)",
            Self::SpareIsMain => c"Spare device is the main device",
            Self::TooManySpares => c"Too many spare devices (at most 16)",
            Self::DuplicateSpare => c"Spare device named twice",
            Self::BeyondMainDevice => c"Target extends beyond the end of the main device",
            Self::SpareTooSmall => c"Spare device too small for metadata and one data block",
            Self::BadLength => c"Target length is zero or not a multiple of block_size",
            Self::UnknownVerb => c"Unknown message verb",
            Self::BadMessageArgs => c"Wrong number of message arguments",
            Self::BlockOutOfRange => c"Block beyond the end of the target",
            Self::OutputFull => c"Output buffer too small",
            Self::BadUuid => c"Invalid uuid (32 hex digits or the 8-4-4-4-12 form, not all zero)",
        }
    }
}

impl CoreError {
    /// [`Self::as_cstr`] without the terminator.
    pub fn as_str(self) -> &'static str {
        self.as_cstr().to_str().unwrap_or("invalid input")
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
