//! Malware scanning with clamd's `INSTREAM` command (optional: `WAGATE_CLAMD`).
//!
//! The plaintext is streamed to clamd in chunks (`<u32 BE length><bytes>`, ended
//! by a zero length), straight from the verified decryption of the stored file, so
//! nothing is held whole in memory and nothing unencrypted touches the disk. Blocking
//! I/O with timeouts: called on a blocking thread.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

pub use crate::config::ClamdAddr;

/// What clamd said about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The signature name clamd reported.
    Infected(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("clamd at {addr}: {source}")]
    Io { addr: String, source: io::Error },
    /// clamd refused the stream as too long (its `StreamMaxLength`).
    #[error("clamd refused the file as too large (raise StreamMaxLength in clamd.conf): {0}")]
    TooLarge(String),
    #[error("clamd answered: {0}")]
    Answer(String),
    #[error("reading the stored file failed: {0}")]
    Source(io::Error),
    #[error("WAGATE_CLAMD is not set")]
    NotConfigured,
}

/// A clamd client (cheap; one connection per scan).
#[derive(Debug, Clone)]
pub struct Scanner {
    pub addr: ClamdAddr,
    pub timeout: Duration,
}

trait Conn: Read + Write {}
impl<T: Read + Write> Conn for T {}

const CHUNK: usize = 64 * 1024;

impl Scanner {
    fn connect(&self) -> io::Result<Box<dyn Conn>> {
        Ok(match &self.addr {
            ClamdAddr::Unix(p) => {
                let s = UnixStream::connect(p)?;
                s.set_read_timeout(Some(self.timeout))?;
                s.set_write_timeout(Some(self.timeout))?;
                Box::new(s)
            }
            ClamdAddr::Tcp(a) => {
                use std::net::ToSocketAddrs;
                let addr = a
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
                let s = TcpStream::connect_timeout(&addr, self.timeout)?;
                s.set_read_timeout(Some(self.timeout))?;
                s.set_write_timeout(Some(self.timeout))?;
                Box::new(s)
            }
        })
    }

    fn io(&self) -> impl Fn(io::Error) -> ScanError + '_ {
        move |source| ScanError::Io {
            addr: self.addr.to_string(),
            source,
        }
    }

    /// `PING` -> `PONG`: is clamd there?
    pub fn ping(&self) -> Result<(), ScanError> {
        let mut c = self.connect().map_err(self.io())?;
        c.write_all(b"zPING\0").map_err(self.io())?;
        let answer = read_answer(&mut c).map_err(self.io())?;
        if answer == "PONG" {
            Ok(())
        } else {
            Err(ScanError::Answer(answer))
        }
    }

    /// Streams `source` to clamd and returns its verdict.
    pub fn scan(&self, source: &mut dyn Read) -> Result<Verdict, ScanError> {
        let mut c = self.connect().map_err(self.io())?;
        c.write_all(b"zINSTREAM\0").map_err(self.io())?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = source.read(&mut buf).map_err(ScanError::Source)?;
            if n == 0 {
                break;
            }
            let sent = c
                .write_all(&(n as u32).to_be_bytes())
                .and_then(|_| c.write_all(&buf[..n]));
            if let Err(e) = sent {
                // clamd closes the stream when it goes over its limit: its answer says why.
                return match read_answer(&mut c) {
                    Ok(a) => Err(classify_error(a)),
                    Err(_) => Err(self.io()(e)),
                };
            }
        }
        c.write_all(&0u32.to_be_bytes()).map_err(self.io())?;
        let answer = read_answer(&mut c).map_err(self.io())?;
        parse_answer(answer)
    }
}

/// Reads one NUL- (or newline-) terminated answer.
fn read_answer(c: &mut dyn Conn) -> io::Result<String> {
    let mut out = Vec::with_capacity(64);
    let mut byte = [0u8; 1];
    while out.len() < 4096 {
        match c.read(&mut byte)? {
            0 => break,
            _ if byte[0] == 0 || byte[0] == b'\n' => break,
            _ => out.push(byte[0]),
        }
    }
    if out.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed without an answer",
        ));
    }
    Ok(String::from_utf8_lossy(&out).trim().to_string())
}

fn classify_error(answer: String) -> ScanError {
    if answer.contains("size limit exceeded") {
        ScanError::TooLarge(answer)
    } else {
        ScanError::Answer(answer)
    }
}

/// `stream: OK`, `stream: <name> FOUND`, or `... ERROR`.
fn parse_answer(answer: String) -> Result<Verdict, ScanError> {
    let rest = answer
        .strip_prefix("stream:")
        .map(str::trim)
        .unwrap_or(&answer);
    if rest == "OK" {
        return Ok(Verdict::Clean);
    }
    if let Some(name) = rest.strip_suffix(" FOUND") {
        return Ok(Verdict::Infected(name.trim().to_string()));
    }
    Err(classify_error(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            ClamdAddr::parse("unix:/run/clamav/clamd.ctl"),
            Ok(ClamdAddr::Unix("/run/clamav/clamd.ctl".into()))
        );
        assert_eq!(
            ClamdAddr::parse("/tmp/c.sock"),
            Ok(ClamdAddr::Unix("/tmp/c.sock".into()))
        );
        assert_eq!(
            ClamdAddr::parse("tcp:127.0.0.1:3310"),
            Ok(ClamdAddr::Tcp("127.0.0.1:3310".into()))
        );
        assert_eq!(
            ClamdAddr::parse("localhost:3310"),
            Ok(ClamdAddr::Tcp("localhost:3310".into()))
        );
        assert!(ClamdAddr::parse("clamd").is_err());
        assert!(ClamdAddr::parse("host:notaport").is_err());
    }

    #[test]
    fn answers() {
        assert_eq!(parse_answer("stream: OK".into()).unwrap(), Verdict::Clean);
        assert_eq!(
            parse_answer("stream: Eicar-Test-Signature FOUND".into()).unwrap(),
            Verdict::Infected("Eicar-Test-Signature".into())
        );
        assert!(matches!(
            parse_answer("INSTREAM size limit exceeded. ERROR".into()),
            Err(ScanError::TooLarge(_))
        ));
        assert!(matches!(
            parse_answer("stream: Can't allocate memory ERROR".into()),
            Err(ScanError::Answer(_))
        ));
    }
}
