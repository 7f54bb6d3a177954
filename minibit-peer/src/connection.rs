//! One task per peer connection. It only frames bytes: exchanges the BEP 3
//! handshakes (with a timeout), then forwards every decoded [`Message`] to
//! the session task and writes the messages the session queues for it. All
//! decisions are the session's (and so the core's).
//!
//! Back-pressure: inbound frames go over the session's bounded channel (a
//! slow session stops us reading the socket); outbound messages come from a
//! bounded per-peer channel the session fills with `try_send`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use minibit_core::torrent::Direction;
use minibit_core::wire::{Handshake, Message};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::codec::{CodecError, HandshakeCodec, MessageCodec};

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
        outgoing: mpsc::Sender<Message>,
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
    /// Capacity of each per-peer outgoing queue, in messages.
    pub outgoing_capacity: usize,
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
    let _ = events.send(ConnEvent::Closed { id, reason }).await;
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
    let (outgoing, queue) = mpsc::channel(config.outgoing_capacity);
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
    let writer = FramedWrite::new(write, MessageCodec::new(config.piece_count));
    tokio::select! {
        result = read_loop(id, reader, events) => result,
        result = write_loop(writer, queue) => result,
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
    mut writer: FramedWrite<OwnedWriteHalf, MessageCodec>,
    mut queue: mpsc::Receiver<Message>,
) -> Result<&'static str, CodecError> {
    while let Some(message) = queue.recv().await {
        writer.feed(message).await?;
        // Batch whatever else is queued into the same flush.
        while let Ok(message) = queue.try_recv() {
            writer.feed(message).await?;
        }
        writer.flush().await?;
    }
    Ok("closed by us")
}
