//! Panics, caught: a hook that keeps the message and place of the last panic instead of
//! printing it, for the finding's file.

use std::sync::Mutex;

static LAST: Mutex<String> = Mutex::new(String::new());

/// Installs the hook (once, at the start).
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(a panic without a message)".to_owned());
        let place = info
            .location()
            .map_or_else(String::new, |l| format!(" at {l}"));
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        *last = format!("{message}{place}");
    }));
}

/// The last panic's message and place.
pub fn take() -> String {
    std::mem::take(&mut *LAST.lock().unwrap_or_else(|e| e.into_inner()))
}
