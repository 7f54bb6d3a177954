//! One task per peer connection. It only frames bytes: exchanges the BEP 3
//! handshakes (with a timeout), then forwards every decoded [`Message`] to
//! the session task and writes the messages the session queues for it. All
//! decisions are the session's (and so the core's).
//!
//! Back-pressure: inbound frames go over the session's bounded channel (a
//! slow session stops us reading the socket); outbound messages come from a
//! bounded per-peer channel the session fills with `try_send`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use minibit_core::torrent::Direction;
use minibit_core::wire::{Handshake, Message};
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc};
use tokio_util::codec::FramedRead;

use crate::codec::{CodecError, FrameBatch, HandshakeCodec, MessageCodec};

/// Driver-side id of one connection, never reused (unlike a core `PeerKey`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// What a connection task tells the session.
#[derive(Debug)]
pub enum ConnEvent {
    /// An outbound connect failed or timed out.
    ConnectFailed {
        /// The connection.
        id: ConnId,
        /// The address dialled.
        addr: SocketAddr,
    },
    /// The peer's handshake arrived; `outgoing` queues messages to it.
    /// Dropping `outgoing` closes the connection.
    Handshake {
        /// The connection.
        id: ConnId,
        /// The peer's address.
        addr: SocketAddr,
        /// Who opened the connection.
        direction: Direction,
        /// The peer's handshake.
        handshake: Handshake,
        /// The per-peer outgoing queue.
        outgoing: Outgoing,
    },
    /// A message from the peer.
    Message {
        /// The connection.
        id: ConnId,
        /// The message.
        message: Message,
    },
    /// The connection ended (socket closed, error, or the session dropped it).
    Closed {
        /// The connection.
        id: ConnId,
        /// The peer's address.
        addr: SocketAddr,
        /// What happened, for the log.
        reason: String,
    },
}

/// Settings shared by every connection of a session.
#[derive(Clone, Debug)]
pub struct ConnConfig {
    /// Our handshake.
    pub handshake: Handshake,
    /// The torrent's piece count (bounds the largest frame).
    pub piece_count: u32,
    /// Longest wait for the TCP connect.
    pub connect_timeout: Duration,
    /// Longest wait for the peer's handshake.
    pub handshake_timeout: Duration,
    /// Most bytes of encoded messages queued for one peer and not yet
    /// handed to its socket.
    pub max_queued_bytes: usize,
}

/// Bytes queued for one peer and not yet handed to its socket, with a
/// signal each time the writer drains some (or stops).
#[derive(Debug, Default)]
struct Backlog {
    bytes: AtomicUsize,
    drained: Notify,
}

/// Wakes every waiter of [`Outgoing::room_for_blocks`] when the write loop
/// ends, whatever the reason.
struct WriterGone(Arc<Backlog>);

impl Drop for WriterGone {
    fn drop(&mut self) {
        self.0.drained.notify_waiters();
    }
}

/// A peer's outgoing queue, bounded by the bytes it holds. Blocks are only
/// read from disk for a peer whose backlog is below
/// [`Outgoing::BLOCK_BACKLOG`] (see [`Outgoing::room_for_blocks`]), so a
/// slow reader slows our serving instead of growing the queue; the hard
/// limit only guards against a peer that stops reading altogether.
#[derive(Clone, Debug)]
pub struct Outgoing {
    queue: mpsc::UnboundedSender<Message>,
    backlog: Arc<Backlog>,
    max_queued_bytes: usize,
}

/// The peer is not reading: its queue already holds the most bytes allowed.
#[derive(Debug, Error)]
#[error("peer is not reading: {queued} bytes already queued (limit {limit})")]
pub struct QueueFull {
    /// Bytes queued.
    pub queued: usize,
    /// The limit.
    pub limit: usize,
}

impl Outgoing {
    /// Backlog in bytes under which blocks are read for this peer: enough
    /// to keep a fast socket busy between two wake-ups of the writer.
    pub const BLOCK_BACKLOG: usize = 1024 * 1024;

    fn new(max_queued_bytes: usize) -> (Self, mpsc::UnboundedReceiver<Message>, Arc<Backlog>) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let backlog = Arc::new(Backlog::default());
        let outgoing = Self {
            queue,
            backlog: Arc::clone(&backlog),
            max_queued_bytes,
        };
        (outgoing, receiver, backlog)
    }

    /// Waits until the backlog is below [`Outgoing::BLOCK_BACKLOG`] or the
    /// connection is gone (then sending is a no-op).
    pub async fn room_for_blocks(&self) {
        loop {
            let drained = self.backlog.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.queue.is_closed()
                || self.backlog.bytes.load(Ordering::Relaxed) < Self::BLOCK_BACKLOG
            {
                return;
            }
            drained.await;
        }
    }

    /// Queues `message`; a closed connection drops it silently.
    ///
    /// # Errors
    /// [`QueueFull`] when the peer already has `max_queued_bytes` waiting.
    pub fn send(&self, message: Message) -> Result<(), QueueFull> {
        let len = message.encoded_len();
        let queued = self.backlog.bytes.load(Ordering::Relaxed);
        if queued + len > self.max_queued_bytes {
            return Err(QueueFull {
                queued,
                limit: self.max_queued_bytes,
            });
        }
        self.backlog.bytes.fetch_add(len, Ordering::Relaxed);
        let _ = self.queue.send(message);
        Ok(())
    }
}

/// Dials `addr` (bounded by the connect timeout) and runs the connection.
pub async fn run_outbound(
    config: ConnConfig,
    id: ConnId,
    addr: SocketAddr,
    events: mpsc::Sender<ConnEvent>,
) {
    match tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => run(config, id, stream, addr, Direction::Outbound, events).await,
        Ok(Err(_)) | Err(_) => {
            let _ = events.send(ConnEvent::ConnectFailed { id, addr }).await;
        }
    }
}

/// Runs a connection accepted by the listener.
pub async fn run_inbound(
    config: ConnConfig,
    id: ConnId,
    stream: TcpStream,
    addr: SocketAddr,
    events: mpsc::Sender<ConnEvent>,
) {
    run(config, id, stream, addr, Direction::Inbound, events).await;
}

async fn run(
    config: ConnConfig,
    id: ConnId,
    stream: TcpStream,
    addr: SocketAddr,
    direction: Direction,
    events: mpsc::Sender<ConnEvent>,
) {
    let _ = stream.set_nodelay(true);
    let reason = match serve(&config, id, stream, addr, direction, &events).await {
        Ok(reason) => reason.to_owned(),
        Err(e) => e.to_string(),
    };
    let _ = events.send(ConnEvent::Closed { id, addr, reason }).await;
}

async fn serve(
    config: &ConnConfig,
    id: ConnId,
    stream: TcpStream,
    addr: SocketAddr,
    direction: Direction,
    events: &mpsc::Sender<ConnEvent>,
) -> Result<&'static str, CodecError> {
    let (read, mut write) = stream.into_split();
    let mut ours = BytesMut::new();
    config.handshake.encode(&mut ours);
    write.write_all(&ours).await?;
    let mut reader = FramedRead::new(read, HandshakeCodec);
    let handshake = match tokio::time::timeout(config.handshake_timeout, reader.next()).await {
        Err(_) => return Ok("handshake timed out"),
        Ok(None) => return Ok("closed before the handshake"),
        Ok(Some(handshake)) => handshake?,
    };
    let (outgoing, queue, backlog) = Outgoing::new(config.max_queued_bytes);
    let event = ConnEvent::Handshake {
        id,
        addr,
        direction,
        handshake,
        outgoing,
    };
    if events.send(event).await.is_err() {
        return Ok("session ended");
    }
    let reader = reader.map_decoder(|_| MessageCodec::new(config.piece_count));
    tokio::select! {
        result = read_loop(id, reader, events) => result,
        result = write_loop(write, queue, backlog) => result,
    }
}

async fn read_loop(
    id: ConnId,
    mut reader: FramedRead<OwnedReadHalf, MessageCodec>,
    events: &mpsc::Sender<ConnEvent>,
) -> Result<&'static str, CodecError> {
    while let Some(message) = reader.next().await {
        let message = message?;
        if events
            .send(ConnEvent::Message { id, message })
            .await
            .is_err()
        {
            return Ok("session ended");
        }
    }
    Ok("closed by the peer")
}

async fn write_loop(
    mut writer: OwnedWriteHalf,
    mut queue: mpsc::UnboundedReceiver<Message>,
    backlog: Arc<Backlog>,
) -> Result<&'static str, CodecError> {
    let backlog = WriterGone(backlog);
    let mut batch = FrameBatch::default();
    while let Some(message) = queue.recv().await {
        let mut fed = message.encoded_len();
        batch.push(message);
        // Batch whatever else is queued into the same writes.
        while let Ok(message) = queue.try_recv() {
            fed += message.encoded_len();
            batch.push(message);
        }
        batch.write_to(&mut writer).await?;
        backlog.0.bytes.fetch_sub(fed, Ordering::Relaxed);
        backlog.0.drained.notify_waiters();
    }
    Ok("closed by us")
}
