//! Loopback port handling and the `/health` probe used while the server starts.
//!
//! The probe is a hand-written HTTP/1.1 GET over a `std` socket: it runs in the launcher's
//! polling loop every few milliseconds, needs no async runtime, and reads only the status line.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The only address the harness binds servers to.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A port on 127.0.0.1 that was free a moment ago (the kernel's choice for port 0). Another
/// process may take it before the server binds it; the launcher retries on that race.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((LOOPBACK, 0))?.local_addr()?.port())
}

/// True when nothing listens on 127.0.0.1:`port` (std sets SO_REUSEADDR, so sockets in
/// TIME_WAIT do not count, just as they do not stop llama-server from binding).
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind((LOOPBACK, port)).is_ok()
}

/// Waits up to `timeout` for `port` to become free; returns whether it did.
pub fn wait_port_free(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if port_is_free(port) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The HTTP status of `GET /health` on 127.0.0.1:`port`, or `None` when nothing answered
/// within `timeout` (not listening yet, or not HTTP).
pub fn health_status(port: u16, timeout: Duration) -> Option<u16> {
    health_status_at(SocketAddr::from((LOOPBACK, port)), "127.0.0.1", "", timeout)
}

/// The HTTP status of `GET {prefix}/health` at `addr` (a server tpsbench did not launch,
/// named `host` in the request), or `None` when nothing answered within `timeout`.
pub fn health_status_at(
    addr: SocketAddr,
    host: &str,
    prefix: &str,
    timeout: Duration,
) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let request =
        format!("GET {prefix}/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 12]; // "HTTP/1.1 200"
    let mut filled = 0;
    while filled < head.len() {
        match stream.read(&mut head[filled..]) {
            Ok(0) | Err(_) => return None,
            Ok(n) => filled += n,
        }
    }
    parse_status_line(&head)
}

fn parse_status_line(head: &[u8; 12]) -> Option<u16> {
    if !head.starts_with(b"HTTP/1.") || head[8] != b' ' {
        return None;
    }
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 503"), Some(503));
        assert_eq!(parse_status_line(b"HTTP/1.0 200"), Some(200));
        assert_eq!(parse_status_line(b"SSH-2.0-Open"), None);
    }

    #[test]
    fn a_bound_port_is_not_free_until_released() {
        let listener = TcpListener::bind((LOOPBACK, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(!port_is_free(port));
        assert!(!wait_port_free(port, Duration::from_millis(30)));
        drop(listener);
        assert!(wait_port_free(port, Duration::from_secs(1)));
    }

    #[test]
    fn health_of_a_closed_port_is_none() {
        let port = free_port().unwrap();
        assert_eq!(health_status(port, Duration::from_millis(100)), None);
    }
}
