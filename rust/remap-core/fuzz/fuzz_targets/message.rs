//! Arbitrary bytes as a message (split on whitespace, as dm core does): parsing never
//! panics, and what parses is one of the verbs with the argument count it takes.
#![no_main]

mod words;

use libfuzzer_sys::fuzz_target;
use remap_core::message::Message;

fuzz_target!(|data: &[u8]| {
    let argv = words::words(data);
    let Ok(m) = Message::parse(&argv) else {
        return;
    };
    let takes = match m {
        Message::Help
        | Message::Stats
        | Message::ClearStats
        | Message::ClearFailed
        | Message::SpareList
        | Message::SpareStats
        | Message::Health
        | Message::Alerts => 1..=1,
        Message::Remap(_)
        | Message::Unremap(_)
        | Message::Query(_)
        | Message::SpareRemove(_) => 2..=2,
        Message::List(_) | Message::Samples(_) => 1..=2,
        Message::Clear | Message::Scan(_) => 2..=2,
    };
    assert!(
        takes.contains(&argv.len()),
        "{m:?} from {} words",
        argv.len()
    );
});
