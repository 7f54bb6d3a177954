//! The simulated network: links between nodes, per-node uplinks that send
//! one message at a time round-robin over their connections, optional
//! download capacity, latency and loss.

use std::collections::VecDeque;
use std::time::Duration;

use crate::torrent::PeerKey;
use crate::wire::Message;

/// Extra delay of a lost message: one TCP retransmission timeout.
const RETRANSMIT_TIMEOUT: Duration = Duration::from_millis(200);

/// A connection between two nodes. Ids are never reused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct LinkId(usize);

/// A message on its way to `to`.
#[derive(Debug)]
pub(super) struct Delivery {
    pub link: LinkId,
    pub to: usize,
    pub message: Message,
}

/// What [`Network::start_next`] put on the wire.
pub(super) struct Sent {
    pub delivery: Delivery,
    /// When the sender's uplink is free again.
    pub uplink_free_at: Duration,
    /// When the message reaches the receiver.
    pub arrives_at: Duration,
}

struct Link {
    /// `[dialer, listener]`.
    nodes: [usize; 2],
    /// Each end's key for the other peer, once its handshake was accepted.
    keys: [Option<PeerKey>; 2],
    /// Messages waiting on each end's uplink.
    queues: [VecDeque<Message>; 2],
    /// Arrival time of the last message sent from each end (TCP keeps order).
    last_arrival: [Duration; 2],
    open: bool,
}

impl Link {
    fn side(&self, node: usize) -> Option<usize> {
        self.nodes.iter().position(|&n| n == node)
    }
}

struct NodeNet {
    upload_bps: f64,
    download_bps: Option<f64>,
    uplink_busy: bool,
    downlink_free_at: Duration,
    /// Links with queued messages from this node, served round-robin.
    active: VecDeque<LinkId>,
}

pub(super) struct Network {
    latency: Duration,
    loss: f64,
    nodes: Vec<NodeNet>,
    links: Vec<Link>,
}

impl Network {
    pub fn new(latency: Duration, loss: f64) -> Self {
        Self {
            latency,
            loss,
            nodes: Vec::new(),
            links: Vec::new(),
        }
    }

    pub fn add_node(&mut self, upload_bps: f64, download_bps: Option<f64>) {
        self.nodes.push(NodeNet {
            upload_bps,
            download_bps,
            uplink_busy: false,
            downlink_free_at: Duration::ZERO,
            active: VecDeque::new(),
        });
    }

    /// A link from `dialer` to `listener`, whose handshake accepted it as `listener_key`.
    pub fn open(&mut self, dialer: usize, listener: usize, listener_key: PeerKey) -> LinkId {
        self.links.push(Link {
            nodes: [dialer, listener],
            keys: [None, Some(listener_key)],
            queues: [VecDeque::new(), VecDeque::new()],
            last_arrival: [Duration::ZERO; 2],
            open: true,
        });
        LinkId(self.links.len() - 1)
    }

    pub fn set_dialer_key(&mut self, link: LinkId, key: PeerKey) {
        self.links[link.0].keys[0] = Some(key);
    }

    /// `(dialer, listener)` of an open link.
    pub fn ends(&self, link: LinkId) -> Option<(usize, usize)> {
        let l = &self.links[link.0];
        l.open.then_some((l.nodes[0], l.nodes[1]))
    }

    /// `node`'s key for its end of `link`, while it has not forgotten it.
    pub fn end_key(&self, link: LinkId, node: usize) -> Option<PeerKey> {
        let l = &self.links[link.0];
        l.side(node).and_then(|side| l.keys[side])
    }

    /// When the last message `node` put on `link` reaches the other end
    /// (a close sent now arrives after it, as TCP's FIN follows the data).
    pub fn last_arrival(&self, link: LinkId, node: usize) -> Duration {
        let l = &self.links[link.0];
        l.side(node)
            .map_or(Duration::ZERO, |side| l.last_arrival[side])
    }

    pub fn forget_end(&mut self, link: LinkId, node: usize) {
        let l = &mut self.links[link.0];
        if let Some(side) = l.side(node) {
            l.keys[side] = None;
        }
    }

    pub fn other_end(&self, link: LinkId, node: usize) -> Option<usize> {
        let l = &self.links[link.0];
        l.side(node).map(|side| l.nodes[1 - side])
    }

    /// Stops all traffic on `link`: queued messages are dropped; messages
    /// already on the wire still arrive at an end that has not forgotten it.
    pub fn close(&mut self, link: LinkId) {
        let l = &mut self.links[link.0];
        l.open = false;
        l.queues = [VecDeque::new(), VecDeque::new()];
    }

    /// Queues `message` on `from`'s end of `link`.
    pub fn enqueue(&mut self, link: LinkId, from: usize, message: Message) {
        let l = &mut self.links[link.0];
        let Some(side) = l.side(from).filter(|_| l.open) else {
            return;
        };
        if l.queues[side].is_empty() {
            self.nodes[from].active.push_back(link);
        }
        l.queues[side].push_back(message);
    }

    pub fn uplink_done(&mut self, node: usize) {
        self.nodes[node].uplink_busy = false;
    }

    /// If `node`'s uplink is idle, sends the next queued message (round-robin
    /// over its links). `draw` in `0.0..1.0` decides whether it is lost once.
    pub fn start_next(&mut self, node: usize, now: Duration, draw: f64) -> Option<Sent> {
        if self.nodes[node].uplink_busy {
            return None;
        }
        while let Some(link) = self.nodes[node].active.pop_front() {
            let l = &mut self.links[link.0];
            let Some(side) = l.side(node) else { continue };
            let Some(message) = l.queues[side].pop_front() else {
                continue;
            };
            if !l.queues[side].is_empty() {
                self.nodes[node].active.push_back(link);
            }
            let to = l.nodes[1 - side];
            let size = message.encoded_len() as f64;
            let uplink_free_at = now + Duration::from_secs_f64(size / self.nodes[node].upload_bps);
            let mut arrives_at = uplink_free_at + self.latency;
            if draw < self.loss {
                arrives_at += RETRANSMIT_TIMEOUT + 2 * self.latency;
            }
            arrives_at = arrives_at.max(l.last_arrival[side]);
            if let Some(download_bps) = self.nodes[to].download_bps {
                let start = arrives_at.max(self.nodes[to].downlink_free_at);
                arrives_at = start + Duration::from_secs_f64(size / download_bps);
                self.nodes[to].downlink_free_at = arrives_at;
            }
            l.last_arrival[side] = arrives_at;
            self.nodes[node].uplink_busy = true;
            return Some(Sent {
                delivery: Delivery { link, to, message },
                uplink_free_at,
                arrives_at,
            });
        }
        None
    }
}
