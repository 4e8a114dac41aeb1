//! HTTP/1.1 over one kept-alive connection, as a load generator needs it and no more: the request
//! written as prepared bytes, the answer's head parsed with httparse, its body framed by
//! Content-Length, the chunked transfer coding, or the end of the connection — and nothing read
//! beyond the answer. The body is only looked into when a check asks for a text in it (searched
//! as it passes, across the pieces it arrives in, never kept whole). An exchange costs one write and usually one read, with no connection task
//! or channel between the caller and the socket (what a general client such as hyper's spends on
//! each request: docs/BENCHMARKS.md).

use memchr::memmem::Finder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// Bytes of the body (without the chunked coding's framing).
    pub body_bytes: u64,
    /// The connection may carry the next request.
    pub keep_alive: bool,
    /// Whether the body holds the text looked for (None: none was looked for).
    pub contains: Option<bool>,
}

/// What the caller knows of the answer to come.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expect<'a> {
    /// The request was HEAD: the answer has no body, whatever its head announces.
    pub head: bool,
    /// A text to look for in the body.
    pub body_contains: Option<&'a Finder<'a>>,
}

/// A search for a text in a body that passes in pieces: the last bytes of each piece are kept
/// to find the text across the boundary with the next.
struct Scan<'a> {
    finder: &'a Finder<'a>,
    found: bool,
    tail: Vec<u8>,
}

impl<'a> Scan<'a> {
    fn new(finder: &'a Finder<'a>) -> Self {
        Self { finder, found: false, tail: Vec::new() }
    }

    /// Looks at the next piece of the body: in the piece itself first (a body that comes in one
    /// piece costs one search and no allocation), then across the boundary with the last one.
    fn feed(&mut self, bytes: &[u8]) {
        if self.found || bytes.is_empty() {
            return;
        }
        if self.finder.find(bytes).is_some() {
            self.found = true;
            return;
        }
        let keep = self.finder.needle().len().saturating_sub(1);
        if !self.tail.is_empty() {
            self.tail.extend_from_slice(&bytes[..bytes.len().min(keep)]);
            if self.finder.find(&self.tail).is_some() {
                self.found = true;
                return;
            }
        } else if bytes.len() < keep {
            self.tail.extend_from_slice(bytes);
            return;
        }
        if bytes.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&bytes[bytes.len() - keep..]);
        } else {
            let cut = self.tail.len().saturating_sub(keep);
            self.tail.drain(..cut);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H1Error {
    /// The connection ended before any byte of the answer: a kept-alive connection the server
    /// closed while it was idle (the request may be sent again on a new one).
    Closed,
    /// The connection failed or ended in the middle of an answer.
    Io,
    /// The answer is not HTTP/1.x.
    Malformed,
}

/// Answer heads larger than this are refused (a load test's target answers with small heads).
const MAX_HEAD: usize = 64 * 1024;

/// One connection and its read buffer (`buf[start..end]` holds bytes read but not used yet).
pub struct H1<S> {
    io: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// The framing an answer's head announces.
struct Head {
    len: usize,
    status: u16,
    length: Option<u64>,
    chunked: bool,
    close: bool,
}

fn parse_head(bytes: &[u8]) -> Result<Option<Head>, H1Error> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if bytes.len() > MAX_HEAD => return Err(H1Error::Malformed),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(H1Error::Malformed),
    };
    let status = response.code.ok_or(H1Error::Malformed)?;
    // HTTP/1.0 closes unless it says keep-alive; 1.1 keeps alive unless it says close.
    let mut close = response.version == Some(0);
    let (mut length, mut chunked) = (None, false);
    for h in response.headers.iter() {
        let value = std::str::from_utf8(h.value).map_err(|_| H1Error::Malformed)?.trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<u64>().map_err(|_| H1Error::Malformed)?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.rsplit(',').next().is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    close = false;
                }
            }
        }
    }
    Ok(Some(Head { len, status, length, chunked, close }))
}

impl<S: AsyncRead + AsyncWrite + Unpin> H1<S> {
    pub fn new(io: S) -> Self {
        Self { io, buf: vec![0; 8192], start: 0, end: 0 }
    }

    /// Reads more into the buffer; the bytes read (0: the connection ended).
    async fn fill(&mut self) -> Result<usize, H1Error> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            } else {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let n = self.io.read(&mut self.buf[self.end..]).await.map_err(|_| H1Error::Io)?;
        self.end += n;
        Ok(n)
    }

    /// Consumes `n` body bytes, reading as needed (and showing them to `scan`).
    async fn skip(&mut self, mut n: u64, scan: &mut Option<Scan<'_>>) -> Result<(), H1Error> {
        loop {
            let take = n.min((self.end - self.start) as u64);
            if let Some(scan) = scan {
                scan.feed(&self.buf[self.start..self.start + take as usize]);
            }
            self.start += take as usize;
            n -= take;
            if n == 0 {
                return Ok(());
            }
            if self.fill().await? == 0 {
                return Err(H1Error::Io);
            }
        }
    }

    /// One line (without its CRLF), reading as needed.
    async fn line(&mut self) -> Result<Vec<u8>, H1Error> {
        loop {
            if let Some(at) = self.buf[self.start..self.end].windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[self.start..self.start + at].to_vec();
                self.start += at + 2;
                return Ok(line);
            }
            if self.end - self.start > MAX_HEAD {
                return Err(H1Error::Malformed);
            }
            if self.fill().await? == 0 {
                return Err(H1Error::Io);
            }
        }
    }

    /// A chunked body: its data bytes.
    async fn chunked(&mut self, scan: &mut Option<Scan<'_>>) -> Result<u64, H1Error> {
        let mut total = 0;
        loop {
            let line = self.line().await?;
            let size = std::str::from_utf8(&line).map_err(|_| H1Error::Malformed)?;
            let size = size.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size, 16).map_err(|_| H1Error::Malformed)?;
            if size == 0 {
                // Trailer fields, then an empty line.
                while !self.line().await?.is_empty() {}
                return Ok(total);
            }
            self.skip(size, scan).await?;
            total += size;
            if !self.line().await?.is_empty() {
                return Err(H1Error::Malformed);
            }
        }
    }

    /// Sends `request` (a whole HTTP/1.1 request) and reads its answer.
    pub async fn exchange(&mut self, request: &[u8], expect: Expect<'_>) -> Result<Answer, H1Error> {
        self.io.write_all(request).await.map_err(|_| H1Error::Io)?;
        self.io.flush().await.map_err(|_| H1Error::Io)?;
        let mut any = self.end > self.start;
        loop {
            let Some(head) = parse_head(&self.buf[self.start..self.end])? else {
                if self.fill().await? == 0 {
                    return Err(if any { H1Error::Io } else { H1Error::Closed });
                }
                any = true;
                continue;
            };
            self.start += head.len;
            if (100..200).contains(&head.status) {
                continue; // an interim answer: the real one follows
            }
            let mut scan = expect.body_contains.map(Scan::new);
            let mut keep_alive = !head.close;
            let body_bytes = if expect.head || head.status == 204 || head.status == 304 {
                0
            } else if head.chunked {
                self.chunked(&mut scan).await?
            } else if let Some(n) = head.length {
                self.skip(n, &mut scan).await?;
                n
            } else {
                keep_alive = false;
                self.until_closed(&mut scan).await?
            };
            let contains = scan.map(|s| s.found);
            return Ok(Answer { status: head.status, body_bytes, keep_alive, contains });
        }
    }

    /// A body without framing: it runs to the end of the connection.
    async fn until_closed(&mut self, scan: &mut Option<Scan<'_>>) -> Result<u64, H1Error> {
        let mut n = 0;
        loop {
            if let Some(scan) = scan {
                scan.feed(&self.buf[self.start..self.end]);
            }
            n += (self.end - self.start) as u64;
            self.start = self.end;
            if self.fill().await? == 0 {
                return Ok(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays `answers` to an H1 client, one per request, each written in pieces of `piece`
    /// bytes; then closes the connection or keeps it open. What the client made of them.
    async fn play(answers: &[&[u8]], piece: usize, then_close: bool) -> Vec<Result<Answer, H1Error>> {
        play_expecting(answers, piece, then_close, Expect::default()).await
    }

    /// `play`, with the client told what to expect.
    async fn play_expecting(
        answers: &[&[u8]],
        piece: usize,
        then_close: bool,
        expect: Expect<'_>,
    ) -> Vec<Result<Answer, H1Error>> {
        let (client, mut server) = tokio::io::duplex(64);
        let owned: Vec<Vec<u8>> = answers.iter().map(|a| a.to_vec()).collect();
        let n = owned.len();
        let writer = tokio::spawn(async move {
            let mut request = [0u8; 64];
            for answer in owned {
                let _ = server.read(&mut request).await;
                for chunk in answer.chunks(piece) {
                    let _ = server.write_all(chunk).await;
                }
            }
            if then_close {
                drop(server);
            } else {
                std::future::pending::<()>().await;
            }
        });
        let mut h1 = H1::new(client);
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(h1.exchange(b"GET / HTTP/1.1\r\n\r\n", expect).await);
        }
        writer.abort();
        out
    }

    #[tokio::test]
    async fn answers_framed_every_way_come_back_whole_in_any_pieces() {
        let length: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let chunked: &[u8] =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n3\r\nefg\r\n0\r\nTrailer: 1\r\n\r\n";
        let empty: &[u8] = b"HTTP/1.1 204 No Content\r\nServer: t\r\n\r\n";
        let interim: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\ncontent-length: 2\r\n\r\nno";
        for piece in [1, 3, 7, 1000] {
            let got = play(&[length, chunked, empty, interim], piece, false).await;
            let answers: Vec<(u16, u64, bool)> =
                got.iter().map(|a| a.map(|a| (a.status, a.body_bytes, a.keep_alive)).expect("answer")).collect();
            assert_eq!(answers, [(200, 5, true), (200, 7, true), (204, 0, true), (503, 2, true)], "pieces of {piece}");
        }
    }

    #[tokio::test]
    async fn close_and_the_end_of_the_connection_frame_what_they_must() {
        let close: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
        let got = play(&[close], 1000, false).await;
        assert_eq!(got[0], Ok(Answer { status: 200, body_bytes: 2, keep_alive: false, contains: None }));
        let unframed: &[u8] = b"HTTP/1.0 200 OK\r\n\r\nuntil the end";
        let got = play(&[unframed], 4, true).await;
        assert_eq!(got[0], Ok(Answer { status: 200, body_bytes: 13, keep_alive: false, contains: None }));
        let cut: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
        assert_eq!(play(&[cut], 1000, true).await[0], Err(H1Error::Io), "ended in the middle of the body");
        assert_eq!(play(&[b""], 1000, true).await[0], Err(H1Error::Closed), "ended before any byte");
        assert_eq!(play(&[b"SMTP ready\r\n\r\n"], 1000, true).await[0], Err(H1Error::Malformed));
    }

    #[tokio::test]
    async fn a_text_is_found_in_a_body_however_it_is_framed_and_cut() {
        let needle = Finder::new(b"lo, wor");
        let expect = Expect { head: false, body_contains: Some(&needle) };
        let length: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello, world";
        let chunked: &[u8] =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nhell\r\n3\r\no, \r\n5\r\nworld\r\n0\r\n\r\n";
        let without: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello there!";
        let error: &[u8] = b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n";
        for piece in [1, 2, 5, 1000] {
            let got = play_expecting(&[length, chunked, without, error], piece, false, expect).await;
            let found: Vec<Option<bool>> = got.iter().map(|a| a.expect("answer").contains).collect();
            assert_eq!(found, [Some(true), Some(true), Some(false), Some(false)], "pieces of {piece}");
        }
        let unframed: &[u8] = b"HTTP/1.0 200 OK\r\n\r\nsay hello, world";
        for piece in [1, 3, 1000] {
            let got = play_expecting(&[unframed], piece, true, expect).await;
            assert_eq!(got[0].map(|a| (a.body_bytes, a.contains)), Ok((16, Some(true))), "pieces of {piece}");
        }
    }

    #[tokio::test]
    async fn the_answer_to_head_has_no_body_whatever_its_length_says() {
        let head: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        let then: &[u8] = b"HTTP/1.1 404 No\r\nContent-Length: 0\r\n\r\n";
        let got = play_expecting(&[head, then], 1000, false, Expect { head: true, body_contains: None }).await;
        let answers: Vec<(u16, u64)> =
            got.iter().map(|a| a.map(|a| (a.status, a.body_bytes)).expect("answer")).collect();
        assert_eq!(answers, [(200, 0), (404, 0)], "the next answer is read as the next");
    }
}
