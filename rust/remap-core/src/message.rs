//! `dmsetup message` verbs: parsed here, executed by the kernel glue.
//!
//! Verbs are case-insensitive; each checks its own argument count; block numbers are
//! strict decimals (see [`super::table_line::parse_u64`]).

use super::error::CoreError;
use super::table_line::parse_u64;
use super::units::Blocks;

/// One parsed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// `help`: list the verbs.
    Help,
    /// `stats`: return the I/O and remap counters.
    Stats,
    /// `clear_stats`: zero the I/O counters (not the remap state).
    ClearStats,
    /// `remap <block>`: remap a block now, copying its data when readable.
    Remap(Blocks),
    /// `unremap <block>`: drop a remap whose main block is writable again.
    Unremap(Blocks),
    /// `query <block>`: where a block lives.
    Query(Blocks),
    /// `list [<from_block>]`: remapped blocks from a block on, bounded, with a continuation.
    List(Blocks),
    /// `clear confirm`: drop every remap and pending block.
    Clear,
    /// `clear_failed`: leave mode `failed` (persisted) after the admin has dealt with
    /// its cause.
    ClearFailed,
    /// `scan start|stop|status`: the background scan.
    Scan(ScanCmd),
    /// `spare_list`: the pool's spares, one line each (device, UUID, size, role,
    /// state).
    SpareList,
    /// `spare_stats`: per spare, its data blocks, used, free and I/O errors.
    SpareStats,
    /// `spare_remove <spare>`: move the spare's blocks to the other spares and mark it
    /// draining, so that a table without it loads.
    SpareRemove(SpareRef),
    /// `health`: the prediction engine's reported state (level, score, forecasts,
    /// deciding model) and every model's verdict.
    Health,
    /// `alerts`: the latest changes of the reported level, oldest first.
    Alerts,
    /// `samples [<from>]`: the statistics samples held, as trace rows, from sample
    /// number `from` on, bounded, with a continuation.
    Samples(u64),
}

/// A spare of the pool, as a message names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpareRef {
    /// Its position in the table (`spare=` in `spare_list`).
    Index(u64),
    /// Its device number `major:minor` (`dev=` in `spare_list`, as the table prints it).
    Dev(u32, u32),
}

impl SpareRef {
    /// Parses `<index>` or `<major>:<minor>` (strict decimals).
    pub fn parse(s: &[u8]) -> Result<Self, CoreError> {
        let num = |b: &[u8]| -> Result<u32, CoreError> {
            u32::try_from(parse_u64(b)?).map_err(|_| CoreError::NumberOverflow)
        };
        match s.iter().position(|&c| c == b':') {
            Some(i) => {
                let (maj, min) = (s.get(..i).unwrap_or(&[]), s.get(i + 1..).unwrap_or(&[]));
                Ok(SpareRef::Dev(num(maj)?, num(min)?))
            }
            None => Ok(SpareRef::Index(parse_u64(s)?)),
        }
    }
}

/// What `scan` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanCmd {
    /// Start a pass now, or resume the stopped one where it stopped.
    Start,
    /// Stop the pass in progress (its position is kept) and the periodic passes.
    Stop,
    /// Report where the scan stands.
    Status,
}

/// Every verb with its synopsis, as `help` prints it.
pub const VERBS: &[(&str, &str)] = &[
    ("help", "list the verbs"),
    (
        "spare_list",
        "the pool's spares: device, UUID, size, role, state",
    ),
    (
        "spare_stats",
        "per spare: data blocks, used, free, I/O errors",
    ),
    (
        "spare_remove <spare>",
        "move a spare's blocks to the others (spare index or major:minor), then drain it",
    ),
    ("stats", "I/O, error and remap counters"),
    ("clear_stats", "zero the I/O and error counters"),
    (
        "remap <block>",
        "remap a block now (data copied when readable)",
    ),
    ("unremap <block>", "move a block back to the main device"),
    ("query <block>", "where a block lives"),
    (
        "list [<from_block>]",
        "remapped blocks, bounded, with a continuation",
    ),
    ("clear confirm", "forget every remap and pending block"),
    ("clear_failed", "leave mode failed and allow remaps again"),
    (
        "scan start|stop|status",
        "start or resume, stop, or report the background scan",
    ),
    (
        "health",
        "alert level, health score, forecasts, model verdicts",
    ),
    ("alerts", "the latest changes of the alert level"),
    (
        "samples [<from>]",
        "statistics samples as trace rows, bounded, with a continuation",
    ),
];

fn block_arg(rest: &[&[u8]]) -> Result<Blocks, CoreError> {
    match rest {
        [b] => Ok(Blocks(parse_u64(b)?)),
        _ => Err(CoreError::BadMessageArgs),
    }
}

impl Message {
    /// Parses `argv` as handed to the target's `message` hook.
    pub fn parse(argv: &[&[u8]]) -> Result<Self, CoreError> {
        let (verb, rest) = argv.split_first().ok_or(CoreError::BadMessageArgs)?;
        let is = |s: &str| verb.eq_ignore_ascii_case(s.as_bytes());
        let none = |m: Message| {
            if rest.is_empty() {
                Ok(m)
            } else {
                Err(CoreError::BadMessageArgs)
            }
        };
        if is("help") {
            none(Message::Help)
        } else if is("stats") {
            none(Message::Stats)
        } else if is("clear_stats") {
            none(Message::ClearStats)
        } else if is("remap") {
            block_arg(rest).map(Message::Remap)
        } else if is("unremap") {
            block_arg(rest).map(Message::Unremap)
        } else if is("query") {
            block_arg(rest).map(Message::Query)
        } else if is("list") {
            if rest.is_empty() {
                Ok(Message::List(Blocks(0)))
            } else {
                block_arg(rest).map(Message::List)
            }
        } else if is("scan") {
            match rest {
                [c] if c.eq_ignore_ascii_case(b"start") => Ok(Message::Scan(ScanCmd::Start)),
                [c] if c.eq_ignore_ascii_case(b"stop") => Ok(Message::Scan(ScanCmd::Stop)),
                [c] if c.eq_ignore_ascii_case(b"status") => Ok(Message::Scan(ScanCmd::Status)),
                _ => Err(CoreError::BadMessageArgs),
            }
        } else if is("health") {
            none(Message::Health)
        } else if is("alerts") {
            none(Message::Alerts)
        } else if is("samples") {
            match rest {
                [] => Ok(Message::Samples(0)),
                [n] => Ok(Message::Samples(parse_u64(n)?)),
                _ => Err(CoreError::BadMessageArgs),
            }
        } else if is("spare_list") {
            none(Message::SpareList)
        } else if is("spare_stats") {
            none(Message::SpareStats)
        } else if is("spare_remove") {
            match rest {
                [d] => SpareRef::parse(d).map(Message::SpareRemove),
                _ => Err(CoreError::BadMessageArgs),
            }
        } else if is("clear_failed") {
            none(Message::ClearFailed)
        } else if is("clear") {
            match rest {
                [c] if c.eq_ignore_ascii_case(b"confirm") => Ok(Message::Clear),
                _ => Err(CoreError::BadMessageArgs),
            }
        } else {
            Err(CoreError::UnknownVerb)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Message, CoreError> {
        let v: Vec<&[u8]> = s.split_whitespace().map(str::as_bytes).collect();
        Message::parse(&v)
    }

    #[test]
    fn verbs() {
        assert_eq!(p("help"), Ok(Message::Help));
        assert_eq!(p("HeLp"), Ok(Message::Help));
        assert_eq!(p("stats"), Ok(Message::Stats));
        assert_eq!(p("clear_stats"), Ok(Message::ClearStats));
        assert_eq!(p("remap 12"), Ok(Message::Remap(Blocks(12))));
        assert_eq!(p("UNREMAP 3"), Ok(Message::Unremap(Blocks(3))));
        assert_eq!(p("query 0"), Ok(Message::Query(Blocks(0))));
        assert_eq!(p("list"), Ok(Message::List(Blocks(0))));
        assert_eq!(p("list 100"), Ok(Message::List(Blocks(100))));
        assert_eq!(p("clear confirm"), Ok(Message::Clear));
        assert_eq!(p("Clear_Failed"), Ok(Message::ClearFailed));
        assert_eq!(p("scan start"), Ok(Message::Scan(ScanCmd::Start)));
        assert_eq!(p("SCAN Stop"), Ok(Message::Scan(ScanCmd::Stop)));
        assert_eq!(p("scan status"), Ok(Message::Scan(ScanCmd::Status)));
        assert_eq!(p("spare_list"), Ok(Message::SpareList));
        assert_eq!(p("Spare_Stats"), Ok(Message::SpareStats));
        assert_eq!(p("spare_stats 0"), Err(CoreError::BadMessageArgs));
        assert_eq!(
            p("spare_remove 2"),
            Ok(Message::SpareRemove(SpareRef::Index(2)))
        );
        assert_eq!(
            p("SPARE_REMOVE 7:16"),
            Ok(Message::SpareRemove(SpareRef::Dev(7, 16)))
        );
        assert_eq!(p("spare_remove"), Err(CoreError::BadMessageArgs));
        assert_eq!(p("spare_remove 1 2"), Err(CoreError::BadMessageArgs));
        for bad in ["7:", ":3", "7:3:1", "-1", "/dev/loop1", "7:x"] {
            assert_eq!(
                p(&format!("spare_remove {bad}")),
                Err(CoreError::BadNumber),
                "{bad}"
            );
        }
        assert_eq!(
            p("spare_remove 4294967296:0"),
            Err(CoreError::NumberOverflow)
        );
        assert_eq!(p("Health"), Ok(Message::Health));
        assert_eq!(p("alerts"), Ok(Message::Alerts));
        assert_eq!(p("samples"), Ok(Message::Samples(0)));
        assert_eq!(p("samples 17"), Ok(Message::Samples(17)));
        assert_eq!(p("health now"), Err(CoreError::BadMessageArgs));
        assert_eq!(p("alerts 1"), Err(CoreError::BadMessageArgs));
        assert_eq!(p("samples 1 2"), Err(CoreError::BadMessageArgs));
        assert_eq!(p("samples -1"), Err(CoreError::BadNumber));
    }

    #[test]
    fn errors() {
        assert_eq!(p(""), Err(CoreError::BadMessageArgs));
        assert_eq!(p("frobnicate"), Err(CoreError::UnknownVerb));
        assert_eq!(p("help me"), Err(CoreError::BadMessageArgs));
        assert_eq!(p("remap"), Err(CoreError::BadMessageArgs));
        assert_eq!(p("remap 1 2"), Err(CoreError::BadMessageArgs));
        assert_eq!(p("remap x"), Err(CoreError::BadNumber));
        assert_eq!(p("clear"), Err(CoreError::BadMessageArgs));
        assert_eq!(p("clear now"), Err(CoreError::BadMessageArgs));
        assert_eq!(p("clear_failed now"), Err(CoreError::BadMessageArgs));
        assert_eq!(p("scan"), Err(CoreError::BadMessageArgs));
        assert_eq!(p("scan go"), Err(CoreError::BadMessageArgs));
        assert_eq!(p("scan start now"), Err(CoreError::BadMessageArgs));
    }
}
