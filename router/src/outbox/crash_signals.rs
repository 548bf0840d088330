//! Crash signals (SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE, SIGSYS) raised on a thread that
//! is inside a plugin's `deliver`: the handler marks that sink's in-flight record as
//! crashed, with the signal, and says so on stderr before the process dies as it would
//! have. Without it a plugin's `abort()` ends the router with no line of its own, and the
//! next start cannot tell which of the deliveries in flight was the cause.
//!
//! The handler only does what a signal handler may: it reads a thread-local pointer and
//! atomics, and calls `pwrite`, `write`, `sigaction` and `raise`. Then it puts back the
//! handler that was there before (Rust's stack-overflow report, or the default) and lets
//! the signal take its course.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Once, OnceLock};

use super::in_flight_record::{Record, State};

const SIGNALS: [c_int; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGABRT,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGSYS,
];

/// A signal's name, for people: `SIGSEGV (signal 11)`.
pub fn name(signal: i32) -> String {
    format!("{} (signal {signal})", short_name(signal))
}

fn short_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGABRT => "SIGABRT",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGSYS => "SIGSYS",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGPIPE => "SIGPIPE",
        _ => "a signal",
    }
}

/// What the handler needs to record a crash on one sink's delivering thread.
pub(super) struct CrashNote {
    fd: c_int,
    sink: Box<[u8]>,
    seq: AtomicI64,
    attempt: AtomicU32,
    isolated: AtomicBool,
    delivered: AtomicI64,
}

impl CrashNote {
    /// For the record in `file` (which must stay open as long as this) of sink `sink`.
    pub(super) fn new(file: &File, sink: &str) -> CrashNote {
        CrashNote {
            fd: file.as_raw_fd(),
            sink: sink.as_bytes().into(),
            seq: AtomicI64::new(0),
            attempt: AtomicU32::new(0),
            isolated: AtomicBool::new(false),
            delivered: AtomicI64::new(0),
        }
    }

    /// Takes the attempt that is about to begin.
    pub(super) fn prepare(&self, record: &Record) {
        self.seq.store(record.seq, Ordering::Relaxed);
        self.attempt.store(record.attempt, Ordering::Relaxed);
        self.isolated.store(record.isolated, Ordering::Relaxed);
        self.delivered.store(record.delivered, Ordering::Relaxed);
    }

    /// The attempt in flight, as a record in `Delivering` state.
    pub(super) fn record(&self) -> Record {
        Record {
            state: State::Delivering,
            signal: 0,
            isolated: self.isolated.load(Ordering::Relaxed),
            seq: self.seq.load(Ordering::Relaxed),
            attempt: self.attempt.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
        }
    }

    /// Runs in the signal handler: async-signal-safe calls only.
    fn crashed(&self, signal: c_int) {
        let mut record = self.record();
        record.state = State::Crashed;
        record.signal = u8::try_from(signal).unwrap_or(0);
        let bytes = record.encode();
        // SAFETY: `fd` is the record's open file; the buffer is on this stack.
        unsafe { libc::pwrite(self.fd, bytes.as_ptr().cast(), bytes.len(), 0) };
        let mut seq = [0u8; 20];
        let mut attempt = [0u8; 20];
        for part in [
            &b"alert-router: the plugin of sink `"[..],
            &self.sink,
            b"` crashed with ",
            short_name(signal).as_bytes(),
            b" while delivering outbox message #",
            digits(record.seq.max(0) as u64, &mut seq),
            b" (attempt ",
            digits(u64::from(record.attempt), &mut attempt),
            b"); at the next start it counts as a crash against the sink's retry.max_crashes\n",
        ] {
            write_stderr(part);
        }
    }
}

fn write_stderr(bytes: &[u8]) {
    // SAFETY: writes `bytes.len()` bytes from a live slice to fd 2.
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

/// `n` in decimal, in `buf`, without allocating.
fn digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

thread_local! {
    /// The note of the attempt this thread is making, or null.
    static CURRENT: Cell<*const CrashNote> = const { Cell::new(std::ptr::null()) };
}

/// This thread is about to call `deliver` for `note`'s sink. `note` must stay put until
/// [`leave`].
pub(super) fn enter(note: &CrashNote) {
    CURRENT.with(|c| c.set(note));
}

/// This thread's `deliver` returned.
pub(super) fn leave() {
    CURRENT.with(|c| c.set(std::ptr::null()));
}

/// The handlers that were installed before ours, in `SIGNALS` order.
static PREVIOUS: OnceLock<[libc::sigaction; SIGNALS.len()]> = OnceLock::new();

/// Installs the handler, once per process.
pub(super) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: sigaction with a zeroed struct as the out-parameter and a handler that
        // only makes async-signal-safe calls; SA_ONSTACK runs it on the alternate stack
        // Rust's runtime sets up for each thread, so a stack overflow can still report.
        unsafe {
            let mut previous: [libc::sigaction; SIGNALS.len()] = std::mem::zeroed();
            for (i, &signal) in SIGNALS.iter().enumerate() {
                libc::sigaction(signal, std::ptr::null(), &mut previous[i]);
            }
            if PREVIOUS.set(previous).is_err() {
                return;
            }
            for signal in SIGNALS {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_crash as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
    });
}

extern "C" fn on_crash(signal: c_int, info: *mut libc::siginfo_t, _context: *mut c_void) {
    let note = CURRENT.try_with(Cell::get).unwrap_or(std::ptr::null());
    if !note.is_null() {
        // SAFETY: `enter` set it to a note that lives until `leave` clears it.
        unsafe { (*note).crashed(signal) };
    }
    // SAFETY: puts back the handler found at install and re-raises what was sent (a
    // fault instead recurs when this returns, and meets the handler put back).
    unsafe {
        if let (Some(previous), Some(i)) =
            (PREVIOUS.get(), SIGNALS.iter().position(|&s| s == signal))
        {
            libc::sigaction(signal, &previous[i], std::ptr::null_mut());
        }
        let sent = info.is_null() || (*info).si_code <= 0;
        if sent {
            libc::raise(signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_without_allocating() {
        let mut buf = [0u8; 20];
        assert_eq!(digits(0, &mut buf), b"0");
        assert_eq!(digits(1234567, &mut buf), b"1234567");
        assert_eq!(digits(u64::MAX, &mut buf), b"18446744073709551615");
    }

    #[test]
    fn signals_are_named() {
        assert_eq!(name(libc::SIGSEGV), "SIGSEGV (signal 11)");
        assert_eq!(name(libc::SIGABRT), "SIGABRT (signal 6)");
    }
}
