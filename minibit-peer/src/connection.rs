//! One task per peer connection. It only frames bytes: reads the BEP 3
//! handshakes, then forwards every decoded [`Message`] to the client's
//! driver task and writes the messages the driver queues for it. All
//! decisions are the driver's (and so the core session's).
//!
//! The dance, with the driver answering over the task's [`Control`]
//! channel:
//! - inbound: read the initiator's handshake first ([`ConnEvent::Handshake`]);
//!   the driver routes it by info-hash and answers [`Control::Bound`] with
//!   our handshake to write back (BEP 3 lets the receiving side wait for the
//!   initiator's handshake when it serves several torrents), or drops the
//!   channel (refused: the task ends);
//! - outbound: connect ([`ConnEvent::Connected`]), write the handshake of
//!   [`Control::Handshake`], read the remote one, then [`Control::Bound`].
//!
//! The driver aborts the task of a connection it closes before the
//! handshake; a bound connection ends when the driver drops its
//! [`Outgoing`] queue (after the queued messages are written).
//!
//! Back-pressure: inbound frames go over the driver's bounded channel (a
//! slow driver stops us reading the socket); outbound messages come from a
//! bounded per-peer queue the driver fills without waiting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use minibit_core::id::ConnectionId;
use minibit_core::wire::{Handshake, Message};
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc};
use tokio_util::codec::FramedRead;

use crate::codec::{CodecError, FrameBatch, HandshakeCodec, MessageCodec};

/// What a connection task tells the driver.
#[derive(Debug)]
pub(crate) enum ConnEvent {
    /// Our dial connected: the driver answers [`Control::Handshake`].
    Connected {
        /// The connection.
        id: ConnectionId,
    },
    /// The remote handshake arrived: the driver answers [`Control::Bound`]
    /// or closes the connection.
    Handshake {
        /// The connection.
        id: ConnectionId,
        /// The peer's handshake.
        handshake: Handshake,
    },
    /// A message from the peer.
    Message {
        /// The connection.
        id: ConnectionId,
        /// The message.
        message: Message,
    },
    /// The connection ended on its own (connect failed, socket closed,
    /// error, or the driver dropped its queue).
    Closed {
        /// The connection.
        id: ConnectionId,
        /// What happened, for the log.
        reason: String,
    },
}

/// What the driver tells a connection task.
#[derive(Debug)]
pub(crate) enum Control {
    /// Outbound: write our handshake, then read the remote one.
    Handshake(Handshake),
    /// The handshake was accepted: write `reply` (inbound: our handshake),
    /// then exchange frames.
    Bound {
        /// Our handshake, for an inbound connection.
        reply: Option<Handshake>,
        /// The torrent's piece count (bounds the largest frame); `None`
        /// while a magnet link fetches its metadata.
        piece_count: Option<u32>,
        /// The messages to write.
        queue: OutgoingQueue,
    },
}

/// Where a connection task's socket comes from.
#[derive(Debug)]
pub(crate) enum Socket {
    /// Accepted by the listener.
    Accepted(TcpStream),
    /// To dial.
    Dial(SocketAddr),
}

/// Settings shared by every connection of a client.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnConfig {
    /// Longest wait for the TCP connect.
    pub connect_timeout: Duration,
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
pub(crate) struct Outgoing {
    queue: mpsc::UnboundedSender<Message>,
    backlog: Arc<Backlog>,
    max_queued_bytes: usize,
}

/// The reading end of an [`Outgoing`] queue.
#[derive(Debug)]
pub(crate) struct OutgoingQueue {
    receiver: mpsc::UnboundedReceiver<Message>,
    backlog: Arc<Backlog>,
}

/// The peer is not reading: its queue already holds the most bytes allowed.
#[derive(Debug, Error)]
#[error("peer is not reading: {queued} bytes already queued (limit {limit})")]
pub(crate) struct QueueFull {
    /// Bytes queued.
    pub queued: usize,
    /// The limit.
    pub limit: usize,
}

impl Outgoing {
    /// Backlog in bytes under which blocks are read for this peer: enough
    /// to keep a fast socket busy between two wake-ups of the writer.
    pub(crate) const BLOCK_BACKLOG: usize = 1024 * 1024;

    /// A queue holding at most `max_queued_bytes`, and its reading end
    /// for the connection task.
    pub(crate) fn new(max_queued_bytes: usize) -> (Self, OutgoingQueue) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let backlog = Arc::new(Backlog::default());
        let outgoing = Self {
            queue,
            backlog: Arc::clone(&backlog),
            max_queued_bytes,
        };
        (outgoing, OutgoingQueue { receiver, backlog })
    }

    /// Whether the backlog is below [`Outgoing::BLOCK_BACKLOG`] or the
    /// connection is gone (then sending is a no-op).
    pub(crate) fn has_room_for_blocks(&self) -> bool {
        self.queue.is_closed() || self.backlog.bytes.load(Ordering::Relaxed) < Self::BLOCK_BACKLOG
    }

    /// Waits until [`Outgoing::has_room_for_blocks`].
    pub(crate) async fn room_for_blocks(&self) {
        loop {
            let drained = self.backlog.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.has_room_for_blocks() {
                return;
            }
            drained.await;
        }
    }

    /// Queues `message`; a closed connection drops it silently.
    ///
    /// # Errors
    /// [`QueueFull`] when the peer already has `max_queued_bytes` waiting.
    pub(crate) fn send(&self, message: Message) -> Result<(), QueueFull> {
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

/// Runs connection `id` until it ends; reports the end with
/// [`ConnEvent::Closed`] unless the driver is gone.
pub(crate) async fn run(
    config: ConnConfig,
    id: ConnectionId,
    socket: Socket,
    events: mpsc::Sender<ConnEvent>,
    control: mpsc::UnboundedReceiver<Control>,
) {
    let reason = match serve(config, id, socket, &events, control).await {
        Ok(reason) => reason.to_owned(),
        Err(e) => e.to_string(),
    };
    let _ = events.send(ConnEvent::Closed { id, reason }).await;
}

async fn serve(
    config: ConnConfig,
    id: ConnectionId,
    socket: Socket,
    events: &mpsc::Sender<ConnEvent>,
    mut control: mpsc::UnboundedReceiver<Control>,
) -> Result<&'static str, CodecError> {
    let (stream, outbound) = match socket {
        Socket::Accepted(stream) => (stream, false),
        Socket::Dial(addr) => {
            match tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => (stream, true),
                Ok(Err(_)) => return Ok("connect failed"),
                Err(_) => return Ok("connect timed out"),
            }
        }
    };
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = FramedRead::new(read, HandshakeCodec);
    if outbound {
        if events.send(ConnEvent::Connected { id }).await.is_err() {
            return Ok("client ended");
        }
        let Some(Control::Handshake(ours)) = control.recv().await else {
            return Ok("closed by us");
        };
        write_handshake(&mut write, &ours).await?;
    }
    let Some(handshake) = reader.next().await.transpose()? else {
        return Ok("closed before the handshake");
    };
    if events
        .send(ConnEvent::Handshake { id, handshake })
        .await
        .is_err()
    {
        return Ok("client ended");
    }
    let Some(Control::Bound {
        reply,
        piece_count,
        queue,
    }) = control.recv().await
    else {
        return Ok("handshake refused");
    };
    if let Some(ours) = reply {
        write_handshake(&mut write, &ours).await?;
    }
    let reader = reader.map_decoder(|_| {
        piece_count.map_or_else(MessageCodec::for_unknown_piece_count, MessageCodec::new)
    });
    tokio::select! {
        result = read_loop(id, reader, events) => result,
        result = write_loop(write, queue) => result,
    }
}

async fn write_handshake(write: &mut OwnedWriteHalf, handshake: &Handshake) -> std::io::Result<()> {
    let mut bytes = BytesMut::new();
    handshake.encode(&mut bytes);
    write.write_all(&bytes).await
}

async fn read_loop(
    id: ConnectionId,
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
            return Ok("client ended");
        }
    }
    Ok("closed by the peer")
}

async fn write_loop(
    mut writer: OwnedWriteHalf,
    queue: OutgoingQueue,
) -> Result<&'static str, CodecError> {
    let OutgoingQueue {
        receiver: mut queue,
        backlog,
    } = queue;
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
