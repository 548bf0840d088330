//! The protocol between the router and a plugin's own process, over a Unix socket pair:
//! length-prefixed frames, each a kind, an id and a body. A call (the router's `create`,
//! `validate`, `deliver`, `destroy`; the plugin's `query`, `emit`, `render`, `request`)
//! is answered by a [`REPLY`] with the same id; `HEALTH` is answered by nothing. Either
//! side may call while the other's call is in flight (a plugin asks `query` from inside
//! `deliver`), so each side reads on a thread of its own ([`read_loop`]) that hands
//! replies to the callers waiting in [`Peer::call`] and everything else to the side's
//! handler.
//!
//! `len: u32 LE` (of what follows) · `kind: u8` · `id: u64 LE` · `body`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

pub const CREATE: u8 = 1;
pub const DELIVER: u8 = 2;
pub const DESTROY: u8 = 3;
pub const QUERY: u8 = 4;
pub const EMIT: u8 = 5;
pub const RENDER: u8 = 6;
pub const HEALTH: u8 = 7;
pub const REPLY: u8 = 8;
pub const VALIDATE: u8 = 9;
/// `method \0 path \0 body`: neither method nor path holds a NUL (the child refuses
/// them before sending), the body may.
pub const REQUEST: u8 = 10;

/// The longest frame either side accepts: far above any message the router makes, and
/// a bound on what a confused peer can make the other allocate.
const MAX_FRAME: usize = 256 << 20;

/// One frame as read.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub id: u64,
    pub body: Vec<u8>,
}

impl Frame {
    /// The two parts of a body written as `first \0 second`.
    pub fn split(&self) -> (&[u8], &[u8]) {
        split_at_nul(&self.body)
    }
}

/// `bytes` cut at the first NUL: what is before it and what is after it (empty without
/// one).
pub fn split_at_nul(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == 0) {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[]),
    }
}

/// A call's answer: a result code (the ABI's `AR_*` or `AR_HOST_*`), a wait in
/// milliseconds (`deliver`'s retry-after, else 0) and a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: i32,
    pub after_ms: u64,
    pub text: String,
}

impl Reply {
    pub fn ok(text: impl Into<String>) -> Reply {
        Reply {
            code: 0,
            after_ms: 0,
            text: text.into(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(12 + self.text.len());
        body.extend_from_slice(&self.code.to_le_bytes());
        body.extend_from_slice(&self.after_ms.to_le_bytes());
        body.extend_from_slice(self.text.as_bytes());
        body
    }

    fn decode(body: &[u8]) -> Option<Reply> {
        let code = i32::from_le_bytes(body.get(..4)?.try_into().ok()?);
        let after_ms = u64::from_le_bytes(body.get(4..12)?.try_into().ok()?);
        let text = String::from_utf8_lossy(body.get(12..)?).into_owned();
        Some(Reply {
            code,
            after_ms,
            text,
        })
    }
}

/// Why a call got no reply.
#[derive(Debug)]
pub enum CallError {
    /// The other side is gone (its process ended, or closed the socket).
    Closed,
    /// No reply within the time given; the call is forgotten.
    TimedOut,
}

/// One side's end: writes frames and matches replies to the calls waiting for them.
pub struct Peer {
    writer: Mutex<UnixStream>,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Pending {
    waiting: HashMap<u64, mpsc::SyncSender<Reply>>,
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Peer {
    /// A peer writing to `stream` (read by [`read_loop`] on a clone of it).
    pub fn new(stream: UnixStream) -> Peer {
        Peer {
            writer: Mutex::new(stream),
            pending: Mutex::new(Pending::default()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Sends a call of `kind` and waits for its reply, at most `timeout` if given.
    pub fn call(
        &self,
        kind: u8,
        body: &[&[u8]],
        timeout: Option<Duration>,
    ) -> Result<Reply, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::sync_channel(1);
        {
            let mut pending = lock(&self.pending);
            if pending.closed {
                return Err(CallError::Closed);
            }
            pending.waiting.insert(id, tx);
        }
        if self.send(kind, id, body).is_err() {
            lock(&self.pending).waiting.remove(&id);
            return Err(CallError::Closed);
        }
        let answer = match timeout {
            Some(t) => rx.recv_timeout(t),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match answer {
            Ok(reply) => Ok(reply),
            Err(RecvTimeoutError::Disconnected) => Err(CallError::Closed),
            Err(RecvTimeoutError::Timeout) => {
                lock(&self.pending).waiting.remove(&id);
                Err(CallError::TimedOut)
            }
        }
    }

    /// Answers call `id`.
    pub fn reply(&self, id: u64, reply: &Reply) -> io::Result<()> {
        self.send(REPLY, id, &[&reply.encode()])
    }

    /// Writes one frame whose body is `parts`, joined.
    pub fn send(&self, kind: u8, id: u64, parts: &[&[u8]]) -> io::Result<()> {
        let len: usize = 9 + parts.iter().map(|p| p.len()).sum::<usize>();
        let header = u32::try_from(len)
            .ok()
            .filter(|&n| n as usize <= MAX_FRAME)
            .ok_or_else(|| io::Error::other(format!("a frame of {len} bytes is too long")))?;
        let mut frame = Vec::with_capacity(4 + len);
        frame.extend_from_slice(&header.to_le_bytes());
        frame.push(kind);
        frame.extend_from_slice(&id.to_le_bytes());
        for part in parts {
            frame.extend_from_slice(part);
        }
        lock(&self.writer).write_all(&frame)
    }

    /// The other side is gone: every waiting call ends with [`CallError::Closed`].
    fn close(&self) {
        let mut pending = lock(&self.pending);
        pending.closed = true;
        pending.waiting.clear();
    }

    fn answer(&self, id: u64, reply: Reply) {
        if let Some(tx) = lock(&self.pending).waiting.remove(&id) {
            let _ = tx.send(reply);
        }
    }
}

/// Reads frames from `stream` until the other side closes it: replies go to the calls
/// of `peer` waiting for them, other frames to `handle`. Then closes `peer`.
pub fn read_loop(peer: &Peer, stream: UnixStream, mut handle: impl FnMut(Frame)) {
    let mut reader = io::BufReader::new(stream);
    while let Ok(Some(frame)) = read_frame(&mut reader) {
        if frame.kind == REPLY {
            match Reply::decode(&frame.body) {
                Some(reply) => peer.answer(frame.id, reply),
                None => break, // not our protocol: stop listening to it
            }
        } else {
            handle(frame);
        }
    }
    peer.close();
}

/// The next frame, or `None` at the end of the stream.
fn read_frame(r: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if !(9..=MAX_FRAME).contains(&len) {
        return Err(io::Error::other(format!("a frame of {len} bytes")));
    }
    let mut head = [0u8; 9];
    r.read_exact(&mut head)?;
    let mut body = vec![0u8; len - 9];
    r.read_exact(&mut body)?;
    let id = u64::from_le_bytes(head[1..9].try_into().map_err(io::Error::other)?);
    Ok(Some(Frame {
        kind: head[0],
        id,
        body,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn calls_cross_in_both_directions_and_end_when_the_other_side_goes() {
        let (a, b) = UnixStream::pair().expect("a socket pair");
        let left = Arc::new(Peer::new(a.try_clone().expect("clone")));
        let right = Arc::new(Peer::new(b.try_clone().expect("clone")));
        // The right side answers a DELIVER by first asking the left side a QUERY.
        let answering = {
            let right = right.clone();
            std::thread::spawn(move || {
                let caller = right.clone();
                read_loop(&right, b, move |frame| {
                    let caller = caller.clone();
                    std::thread::spawn(move || {
                        let asked = caller
                            .call(QUERY, &[b"status"], Some(Duration::from_secs(5)))
                            .expect("the query is answered");
                        let reply = Reply {
                            code: 1,
                            after_ms: 250,
                            text: format!("{} after {}", frame.body.len(), asked.text),
                        };
                        caller.reply(frame.id, &reply).expect("reply");
                    });
                });
            })
        };
        let left_reader = {
            let left = left.clone();
            std::thread::spawn(move || {
                let replier = left.clone();
                read_loop(&left, a, move |frame| {
                    assert_eq!((frame.kind, frame.body.as_slice()), (QUERY, &b"status"[..]));
                    replier.reply(frame.id, &Reply::ok("up")).expect("reply");
                });
            })
        };
        let reply = left
            .call(
                DELIVER,
                &[b"hello", b" world"],
                Some(Duration::from_secs(5)),
            )
            .expect("the deliver is answered");
        assert_eq!(
            reply,
            Reply {
                code: 1,
                after_ms: 250,
                text: "11 after up".into()
            }
        );
        // The right side goes away: a waiting call ends, and so do later ones.
        let _ = right
            .writer
            .lock()
            .map(|w| w.shutdown(std::net::Shutdown::Both));
        let _ = left
            .writer
            .lock()
            .map(|w| w.shutdown(std::net::Shutdown::Both));
        answering.join().expect("the right reader ends");
        left_reader.join().expect("the left reader ends");
        assert!(matches!(
            left.call(DELIVER, &[b"x"], None),
            Err(CallError::Closed)
        ));
    }

    #[test]
    fn a_call_nobody_answers_times_out() {
        let (a, _b) = UnixStream::pair().expect("a socket pair");
        let peer = Peer::new(a);
        assert!(matches!(
            peer.call(DELIVER, &[b"x"], Some(Duration::from_millis(20))),
            Err(CallError::TimedOut)
        ));
    }

    #[test]
    fn two_part_bodies_split_at_the_first_nul() {
        let frame = Frame {
            kind: RENDER,
            id: 1,
            body: b"name\0{\"a\":1}".to_vec(),
        };
        assert_eq!(frame.split(), (&b"name"[..], &b"{\"a\":1}"[..]));
        // A request's three parts: the body keeps a NUL of its own.
        let frame = Frame {
            kind: REQUEST,
            id: 2,
            body: b"POST\0silences\0{}\0".to_vec(),
        };
        let (method, rest) = frame.split();
        assert_eq!(
            (method, split_at_nul(rest)),
            (&b"POST"[..], (&b"silences"[..], &b"{}\0"[..]))
        );
    }
}
