//! A small blocking HTTP/1.1 server: one thread per connection, keep-alive,
//! `Content-Length` bodies, optional TLS through rustls 0.23.
//!
//! The simulator owns its sockets instead of using an HTTP framework because
//! fault injection needs to act on them directly: close a connection before
//! the request is handled, stall, or park the handler while a test kills the
//! client.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

/// Largest request body the simulator accepts (TFE's own limit is far above
/// anything this product sends).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Idle keep-alive connections are closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub peer: IpAddr,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// POST, PUT, PATCH and DELETE change state; GET and HEAD do not.
    pub fn is_mutating(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
}

/// A response to write back.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status, "application/vnd.api+json", value.to_string())
    }
    pub fn plain_json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status, "application/json", value.to_string())
    }
    pub fn empty(status: u16) -> Self {
        Response {
            status,
            headers: vec![],
            body: vec![],
        }
    }
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What the handler decides for one request.
pub enum Reply {
    /// Write this response and keep the connection.
    Send(Response),
    /// Close the connection without answering.
    Drop,
}

/// The application behind the server.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &Request) -> Reply;
}

/// Runs the accept loop on `listener` until `stop` is set.
pub fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: Arc<dyn Handler>,
    stop: Arc<AtomicBool>,
) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else { continue };
        let handler = Arc::clone(&handler);
        let tls = tls.clone();
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let peer = match stream.peer_addr() {
                Ok(a) => a.ip(),
                Err(_) => return,
            };
            let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
            let _ = stream.set_nodelay(true);
            match tls {
                Some(cfg) => {
                    let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                        return;
                    };
                    let tls_stream = rustls::StreamOwned::new(conn, stream);
                    connection_loop(tls_stream, peer, &*handler, &stop);
                }
                None => connection_loop(stream, peer, &*handler, &stop),
            }
        });
    }
}

fn connection_loop<S: Read + Write>(
    stream: S,
    peer: IpAddr,
    handler: &dyn Handler,
    stop: &AtomicBool,
) {
    let mut reader = BufReader::new(stream);
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let req = match read_request(&mut reader, peer) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(_) => {
                let resp = Response::new(400, "text/plain", "bad request\n");
                let _ = write_response(reader.get_mut(), &resp, true);
                return;
            }
        };
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        match handler.handle(&req) {
            Reply::Drop => return,
            Reply::Send(resp) => {
                if write_response(reader.get_mut(), &resp, close).is_err() || close {
                    return;
                }
            }
        }
    }
}

/// Reads one request; `Ok(None)` on a clean EOF between requests.
fn read_request<R: BufRead>(r: &mut R, peer: IpAddr) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let line = line.trim_end();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad request line",
        ));
    };
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = match headers.get("content-length") {
        Some(v) => v
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad content-length"))?,
        None => 0,
    };
    if len > MAX_BODY {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, parse_query(q)),
        None => (target, vec![]),
    };
    Ok(Some(Request {
        method: method.to_string(),
        path: percent_decode(path),
        query,
        headers,
        body,
        peer,
    }))
}

fn write_response<W: Write>(w: &mut W, resp: &Response, close: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    // An origin server with a clock sends Date (RFC 9110 section 6.6.1);
    // TFE's nginx does. The client takes token lifetimes from it.
    if !resp
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("date"))
    {
        head.push_str(&format!(
            "Date: {}\r\n",
            crate::util::http_date(crate::util::unix_now())
        ));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut buf = head.into_bytes();
    buf.extend_from_slice(&resp.body);
    w.write_all(&buf)?;
    w.flush()
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(&v.replace('+', " ")))
        })
        .collect()
}

/// Decodes `%XX` escapes; invalid escapes are kept as they are.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        410 => "Gone",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Opens a plain TCP connection and closes it: used to probe whether a port listens.
pub fn port_open(addr: std::net::SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("a%5Bb%5D"), "a[b]");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn parses_a_request_with_body() {
        let raw = b"PATCH /x?token=a%2Bb HTTP/1.1\r\nContent-Length: 2\r\nX-A: b\r\n\r\n{}";
        let mut r = BufReader::new(&raw[..]);
        let req = read_request(&mut r, "127.0.0.1".parse().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(req.method, "PATCH");
        assert_eq!(req.path, "/x");
        assert_eq!(req.query_param("token"), Some("a+b"));
        assert_eq!(req.header("X-A"), Some("b"));
        assert_eq!(req.body, b"{}");
    }
}
