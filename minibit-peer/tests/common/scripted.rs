//! A scripted peer on a raw TCP socket (it says exactly what a test tells
//! it to, including things a real client never would), and a capture of
//! the session's log so tests can check the reason a peer was dropped.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::InfoHash;
use minibit_core::wire::{Decoder, Handshake, Message, PeerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A generous bound so a stuck exchange fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(30);

/// One raw connection to (or from) a session.
pub struct Scripted {
    pub stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
}

impl Scripted {
    /// Wraps a connected socket to a torrent of `piece_count` pieces.
    pub fn new(stream: TcpStream, piece_count: u32) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::new(piece_count),
        }
    }

    /// Connects to `addr` without saying anything.
    pub async fn connect(addr: SocketAddr, piece_count: u32) -> Self {
        Self::new(TcpStream::connect(addr).await.unwrap(), piece_count)
    }

    /// Connects to `addr` from the loopback address `ip` (e.g. 127.0.0.2:
    /// a host of its own, as far as the session can tell).
    pub async fn connect_from(ip: IpAddr, addr: SocketAddr, piece_count: u32) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(ip, 0)).unwrap();
        Self::new(socket.connect(addr).await.unwrap(), piece_count)
    }

    /// Connects to `addr`, sends a handshake for `info_hash` from
    /// `peer_id` and returns the session's handshake.
    pub async fn handshaken(
        addr: SocketAddr,
        piece_count: u32,
        info_hash: InfoHash,
        peer_id: PeerId,
    ) -> (Self, Handshake) {
        let mut peer = Self::connect(addr, piece_count).await;
        peer.send_handshake(info_hash, peer_id).await;
        let theirs = peer.handshake().await;
        (peer, theirs)
    }

    /// The address the session sees this connection come from.
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    /// Plays a seeder that accepted this connection: handshakes as
    /// `peer_id`, claims all `piece_count` pieces and unchokes.
    pub async fn open_as_seeder(&mut self, info_hash: InfoHash, peer_id: PeerId, piece_count: u32) {
        self.send_handshake(info_hash, peer_id).await;
        self.handshake().await;
        let full = Bitfield::full(piece_count).to_wire();
        self.send(&Message::Bitfield(full.into())).await;
        self.send(&Message::Unchoke).await;
    }

    /// The next request (piece, offset, length), skipping other messages;
    /// `None` once the connection closed.
    pub async fn next_request(&mut self) -> Option<(u32, u32, u32)> {
        loop {
            if let Message::Request {
                piece,
                offset,
                length,
            } = self.recv().await?
            {
                return Some((piece, offset, length));
            }
        }
    }

    /// Sends a BEP 3 handshake.
    pub async fn send_handshake(&mut self, info_hash: InfoHash, peer_id: PeerId) {
        let mut buf = BytesMut::new();
        Handshake::new(info_hash, peer_id).encode(&mut buf);
        self.raw(&buf).await;
    }

    /// Sends `message`.
    pub async fn send(&mut self, message: &Message) {
        self.try_send(message).await.unwrap();
    }

    /// Sends `message`; an error when the session closed the connection.
    pub async fn try_send(&mut self, message: &Message) -> std::io::Result<()> {
        let mut buf = BytesMut::new();
        message.encode(&mut buf);
        self.stream.write_all(&buf).await
    }

    /// Sends bytes as they are.
    pub async fn raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads the session's handshake.
    pub async fn handshake(&mut self) -> Handshake {
        self.try_handshake()
            .await
            .expect("the connection closed before the handshake")
    }

    /// The peer's handshake, `None` if the connection closed first (a
    /// refusal).
    pub async fn try_handshake(&mut self) -> Option<Handshake> {
        loop {
            if let Some(handshake) = Handshake::decode(&mut self.buf).unwrap() {
                return Some(handshake);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next message, `None` if the connection closed first.
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            if let Some(message) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(message);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// Reads messages until one matches `pick`.
    pub async fn recv_until<T>(&mut self, mut pick: impl FnMut(Message) -> Option<T>) -> T {
        loop {
            let message = self.recv().await.expect("connection closed early");
            if let Some(found) = pick(message) {
                return found;
            }
        }
    }

    /// Reads until the session closes the connection (`true`), or `WAIT`
    /// passes with the connection still open (`false`).
    pub async fn closed_by_peer(&mut self) -> bool {
        let mut sink = [0u8; 4096];
        loop {
            match tokio::time::timeout(WAIT, self.stream.read(&mut sink)).await {
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    }

    /// Reads more bytes; `false` on EOF or reset.
    async fn fill(&mut self) -> bool {
        let read = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
            .await
            .expect("the session said nothing");
        matches!(read, Ok(n) if n > 0)
    }
}

/// Everything every session of this test binary logged (debug and up).
#[derive(Clone)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Installs the capture as the global subscriber (once per binary).
    pub fn install() -> Self {
        static CAPTURE: OnceLock<LogCapture> = OnceLock::new();
        CAPTURE
            .get_or_init(|| {
                let capture = LogCapture(Arc::default());
                let writer = capture.clone();
                tracing_subscriber::fmt()
                    .with_max_level(tracing::Level::DEBUG)
                    .with_ansi(false)
                    .with_writer(move || writer.clone())
                    .init();
                capture
            })
            .clone()
    }

    /// Every line logged so far.
    pub fn lines(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines().map(str::to_owned).collect()
    }

    /// Whether some log line mentions `addr` and contains every one of `words`.
    pub fn has_line(&self, addr: SocketAddr, words: &[&str]) -> bool {
        let tag = format!("addr={addr}");
        self.lines()
            .iter()
            .any(|line| line.contains(&tag) && words.iter().all(|w| line.contains(w)))
    }

    /// Waits (bounded by `WAIT`) until [`Self::has_line`] holds.
    pub async fn wait_line(&self, addr: SocketAddr, words: &[&str]) -> bool {
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            if self.has_line(addr, words) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
