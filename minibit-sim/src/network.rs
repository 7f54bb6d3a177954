//! The simulated network: links between nodes, per-node uplinks that send
//! one message at a time round-robin over their connections, optional
//! download capacity, latency and loss.

use std::collections::VecDeque;
use std::time::Duration;

use minibit_core::id::PeerKey;
use minibit_core::wire::Message;

/// Extra delay of a lost message: one TCP retransmission timeout.
const RETRANSMIT_TIMEOUT: Duration = Duration::from_millis(200);

/// A connection between two nodes. Ids are never reused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct LinkId(usize);

/// A message [`Network::send`] or [`Network::send_ready`] put on the wire,
/// for `to` at `arrives_at`.
pub(super) struct Sent {
    pub link: LinkId,
    pub to: usize,
    /// `to`'s key for the sender when it was sent, if `to` had accepted
    /// the connection by then.
    pub key: Option<PeerKey>,
    pub message: Message,
    /// When the message reaches the receiver.
    pub arrives_at: Duration,
    /// Payload bytes of the block it carries (0 for other messages).
    pub block_bytes: u64,
}

struct Link {
    /// `[dialer, listener]`.
    nodes: [usize; 2],
    /// Each end's key for the other peer, once its handshake was accepted.
    keys: [Option<PeerKey>; 2],
    /// Messages waiting on each end's uplink.
    queues: [VecDeque<Message>; 2],
    /// Bytes of the blocks among them.
    queued_block_bytes: [u64; 2],
    /// Arrival time of the last message sent from each end (TCP keeps order).
    last_arrival: [Duration; 2],
    /// Each end's last choke/unchoke said unchoke (BEP 3 `am_choking` false).
    unchokes: [bool; 2],
    /// Each end's last interested/not-interested said interested.
    interested: [bool; 2],
    open: bool,
}

impl Link {
    fn side(&self, node: usize) -> Option<usize> {
        self.nodes.iter().position(|&n| n == node)
    }

    /// Whether `side` unchokes the other end and the other end is interested in it.
    fn demand(&self, side: usize) -> bool {
        self.open && self.unchokes[side] && self.interested[1 - side]
    }
}

/// Where an uplink's idle time went, as of the messages its node sent and
/// received (seconds of virtual time).
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub(super) struct UplinkIdle {
    /// Idle while a peer the node unchokes was interested in it: the
    /// requests that would keep it busy were missing (pipeline too short,
    /// a new unchoke still ramping up, requests or blocks in flight).
    pub starved_s: f64,
    /// Idle while no unchoked peer was interested (nothing to offer, or
    /// everyone who wants something is choked).
    pub no_demand_s: f64,
}

struct NodeNet {
    /// Uplink transmission time per byte, nanoseconds.
    upload_ns_per_byte: f64,
    /// Downlink reception time per byte, nanoseconds (`None`: unlimited).
    download_ns_per_byte: Option<f64>,
    /// A block is on the uplink until the next [`Network::uplink_done`].
    uplink_busy: bool,
    /// When the messages already put on the uplink are all sent.
    uplink_free_at: Duration,
    downlink_free_at: Duration,
    /// Links with queued messages from this node, served round-robin.
    active: VecDeque<LinkId>,
    /// Links on which this node unchokes an interested peer.
    demand: u32,
    /// Idle time accounted up to this instant.
    accounted_to: Duration,
    idle: UplinkIdle,
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
            upload_ns_per_byte: 1e9 / upload_bps,
            download_ns_per_byte: download_bps.map(|bps| 1e9 / bps),
            uplink_busy: false,
            uplink_free_at: Duration::ZERO,
            downlink_free_at: Duration::ZERO,
            active: VecDeque::new(),
            demand: 0,
            accounted_to: Duration::ZERO,
            idle: UplinkIdle::default(),
        });
    }

    /// A link from `dialer` to `listener`, whose handshake accepted it as `listener_key`.
    pub fn open(&mut self, dialer: usize, listener: usize, listener_key: PeerKey) -> LinkId {
        self.links.push(Link {
            nodes: [dialer, listener],
            keys: [None, Some(listener_key)],
            queues: [VecDeque::new(), VecDeque::new()],
            queued_block_bytes: [0; 2],
            last_arrival: [Duration::ZERO; 2],
            unchokes: [false; 2],
            interested: [false; 2],
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
    pub fn close(&mut self, link: LinkId, now: Duration) {
        self.set_flags(link, now, |l| l.open = false);
        let l = &mut self.links[link.0];
        l.queues = [VecDeque::new(), VecDeque::new()];
        l.queued_block_bytes = [0; 2];
    }

    /// Bytes of the blocks waiting on `node`'s end of `link` (0 for a
    /// closed link or a stranger).
    pub fn block_backlog(&self, link: LinkId, node: usize) -> u64 {
        let l = &self.links[link.0];
        l.side(node).map_or(0, |side| l.queued_block_bytes[side])
    }

    /// Sends `message` from `from` on `link` at `now`. A block (`piece`
    /// message) joins the link's queue: blocks take the uplink one at a
    /// time, round-robin over the links ([`Network::send_ready`]). Any other
    /// message goes on the wire at once, as TCP slips a small message of an
    /// idle connection between the packets of a block under way, unless
    /// messages already wait on this link (it then follows them); its
    /// transmission time still delays the next block. `lost` is asked
    /// whether it is lost once (and retransmitted).
    pub fn send(
        &mut self,
        link: LinkId,
        from: usize,
        message: Message,
        now: Duration,
        lost: impl FnOnce() -> bool,
    ) -> Option<Sent> {
        let side = {
            let l = &self.links[link.0];
            l.side(from).filter(|_| l.open)?
        };
        match message {
            Message::Unchoke | Message::Choke => {
                let unchoke = matches!(message, Message::Unchoke);
                self.set_flags(link, now, |l| l.unchokes[side] = unchoke);
            }
            Message::Interested | Message::NotInterested => {
                let interested = matches!(message, Message::Interested);
                self.set_flags(link, now, |l| l.interested[side] = interested);
            }
            _ => {}
        }
        let l = &mut self.links[link.0];
        if matches!(message, Message::Piece { .. }) || !l.queues[side].is_empty() {
            if l.queues[side].is_empty() {
                self.nodes[from].active.push_back(link);
            }
            l.queued_block_bytes[side] += block_bytes(&message);
            l.queues[side].push_back(message);
            return None;
        }
        // The message moves `uplink_free_at`: idle time before it counts now.
        self.account(from, now);
        let node = &mut self.nodes[from];
        let size = message.encoded_len() as f64;
        let tx = transmission(size, node.upload_ns_per_byte);
        let start = if node.uplink_busy {
            now
        } else {
            now.max(node.uplink_free_at)
        };
        node.uplink_free_at = node.uplink_free_at.max(now) + tx;
        Some(self.put_on_wire(link, side, message, size, start + tx, lost))
    }

    /// The block on `node`'s uplink is sent (at `now`).
    pub fn uplink_done(&mut self, node: usize, now: Duration) {
        self.account(node, now);
        self.nodes[node].uplink_busy = false;
    }

    /// Changes the choke/interest flags of `link` with `change`, keeping
    /// both ends' demand counts (and their idle accounts) current.
    fn set_flags(&mut self, link: LinkId, now: Duration, change: impl FnOnce(&mut Link)) {
        let l = &self.links[link.0];
        let before = [l.demand(0), l.demand(1)];
        let nodes = l.nodes;
        change(&mut self.links[link.0]);
        let l = &self.links[link.0];
        let after = [l.demand(0), l.demand(1)];
        for side in 0..2 {
            let after = after[side];
            if after != before[side] {
                self.account(nodes[side], now);
                let demand = &mut self.nodes[nodes[side]].demand;
                if after {
                    *demand += 1;
                } else {
                    *demand -= 1;
                }
            }
        }
    }

    /// Adds the time since the last account to `node`'s idle figures if
    /// its uplink carried no block meanwhile.
    fn account(&mut self, node: usize, now: Duration) {
        let n = &mut self.nodes[node];
        let from = n.accounted_to.max(n.uplink_free_at);
        if !n.uplink_busy && now > from {
            let idle = now.saturating_sub(from).as_secs_f64();
            if n.demand > 0 {
                n.idle.starved_s += idle;
            } else {
                n.idle.no_demand_s += idle;
            }
        }
        n.accounted_to = n.accounted_to.max(now);
    }

    /// `node`'s uplink idle time so far, accounted up to `now`.
    pub fn uplink_idle(&mut self, node: usize, now: Duration) -> UplinkIdle {
        self.account(node, now);
        self.nodes[node].idle
    }

    /// If `node`'s uplink is not busy with a block, sends the messages
    /// waiting on its links back to back, round-robin over the links, up
    /// to and including the next block, into `out`. Returns when the
    /// uplink is free again if it now carries a block (the caller then
    /// calls [`Network::uplink_done`] at that instant). `lost` is asked once
    /// per message whether it is lost once (and retransmitted).
    pub fn send_ready(
        &mut self,
        node: usize,
        now: Duration,
        mut lost: impl FnMut() -> bool,
        out: &mut Vec<Sent>,
    ) -> Option<Duration> {
        if self.nodes[node].uplink_busy {
            return None;
        }
        self.account(node, now);
        let mut clock = now.max(self.nodes[node].uplink_free_at);
        while let Some(link) = self.nodes[node].active.pop_front() {
            let l = &mut self.links[link.0];
            let Some(side) = l.side(node) else { continue };
            let Some(message) = l.queues[side].pop_front() else {
                continue;
            };
            l.queued_block_bytes[side] -= block_bytes(&message);
            if !l.queues[side].is_empty() {
                self.nodes[node].active.push_back(link);
            }
            let size = message.encoded_len() as f64;
            clock += transmission(size, self.nodes[node].upload_ns_per_byte);
            let sent = self.put_on_wire(link, side, message, size, clock, &mut lost);
            let block = sent.block_bytes > 0;
            out.push(sent);
            if block {
                self.nodes[node].uplink_busy = true;
                self.nodes[node].uplink_free_at = clock;
                return Some(clock);
            }
        }
        self.nodes[node].uplink_free_at = clock;
        None
    }

    /// `message` (`size` bytes on the wire), whose last byte leaves `side`
    /// of `link` at `sent_at`, on its way: latency, a possible loss, order
    /// behind the link's earlier messages, the receiver's downlink.
    fn put_on_wire(
        &mut self,
        link: LinkId,
        side: usize,
        message: Message,
        size: f64,
        sent_at: Duration,
        lost: impl FnOnce() -> bool,
    ) -> Sent {
        let l = &mut self.links[link.0];
        let to = l.nodes[1 - side];
        let mut arrives_at = sent_at + self.latency;
        if self.loss > 0.0 && lost() {
            arrives_at += RETRANSMIT_TIMEOUT + 2 * self.latency;
        }
        arrives_at = arrives_at.max(l.last_arrival[side]);
        if let Some(ns_per_byte) = self.nodes[to].download_ns_per_byte {
            let start = arrives_at.max(self.nodes[to].downlink_free_at);
            arrives_at = start + transmission(size, ns_per_byte);
            self.nodes[to].downlink_free_at = arrives_at;
        }
        l.last_arrival[side] = arrives_at;
        Sent {
            link,
            to,
            key: l.keys[1 - side],
            block_bytes: block_bytes(&message),
            message,
            arrives_at,
        }
    }
}

/// Payload bytes of the block `message` carries (0 for other messages).
fn block_bytes(message: &Message) -> u64 {
    match message {
        Message::Piece { data, .. } => data.len() as u64,
        _ => 0,
    }
}

/// Time to move `size` bytes at `ns_per_byte`.
fn transmission(size: f64, ns_per_byte: f64) -> Duration {
    Duration::from_nanos((size * ns_per_byte) as u64)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    const LATENCY: Duration = Duration::from_millis(25);

    /// Node 0 uploads at 1 byte per µs to nodes 1 and 2 (links 0 and 1).
    fn star() -> Network {
        let mut net = Network::new(LATENCY, 0.0);
        for _ in 0..3 {
            net.add_node(1_000_000.0, None);
        }
        for to in [1, 2] {
            let link = net.open(0, to, PeerKey(0));
            net.set_dialer_key(link, PeerKey(to));
        }
        net
    }

    fn block(len: usize) -> Message {
        Message::Piece {
            piece: 0,
            offset: 0,
            data: Bytes::from(vec![0; len]),
        }
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// Sends what the uplink of node 0 can send now, returning the arrivals.
    fn pump(net: &mut Network, now: Duration) -> (Option<Duration>, Vec<(usize, Duration)>) {
        let mut out = Vec::new();
        let busy_until = net.send_ready(0, now, || false, &mut out);
        (
            busy_until,
            out.iter().map(|s| (s.to, s.arrives_at)).collect(),
        )
    }

    #[test]
    fn blocks_take_the_uplink_one_at_a_time_round_robin() {
        let mut net = star();
        let (a, b) = (LinkId(0), LinkId(1));
        for link in [a, a, b] {
            assert!(net.send(link, 0, block(987), us(0), || false).is_none());
        }
        // A block message is 1000 bytes on the wire: 1000 µs at 1 byte/µs.
        let (busy, sent) = pump(&mut net, us(0));
        assert_eq!(busy, Some(us(1000)));
        assert_eq!(sent, [(1, us(1000) + LATENCY)]);
        assert_eq!(
            pump(&mut net, us(500)).0,
            None,
            "busy until the block is sent"
        );
        net.uplink_done(0, Duration::ZERO);
        let (_, sent) = pump(&mut net, us(1000));
        assert_eq!(sent, [(2, us(2000) + LATENCY)], "the other link's turn");
        net.uplink_done(0, Duration::ZERO);
        let (_, sent) = pump(&mut net, us(2000));
        assert_eq!(sent, [(1, us(3000) + LATENCY)]);
    }

    #[test]
    fn a_small_message_slips_past_a_block_of_another_link_but_not_of_its_own() {
        let mut net = star();
        let (a, b) = (LinkId(0), LinkId(1));
        assert!(net.send(a, 0, block(987), us(0), || false).is_none());
        assert!(net.send(a, 0, block(987), us(0), || false).is_none());
        pump(&mut net, us(0));
        // A 9-byte HAVE to node 2 while a block to node 1 is on the wire.
        let have = net
            .send(b, 0, Message::Have { piece: 3 }, us(100), || false)
            .expect("sent at once");
        assert_eq!((have.to, have.arrives_at), (2, us(109) + LATENCY));
        // To node 1 it waits behind the queued block, and keeps link order.
        assert!(
            net.send(a, 0, Message::Have { piece: 4 }, us(200), || false)
                .is_none()
        );
        net.uplink_done(0, Duration::ZERO);
        // The HAVE's 9 bytes delayed the second block by 9 µs.
        let (busy, sent) = pump(&mut net, us(1000));
        assert_eq!(busy, Some(us(2009)));
        assert_eq!(sent, [(1, us(2009) + LATENCY)]);
        net.uplink_done(0, Duration::ZERO);
        let (busy, sent) = pump(&mut net, us(2009));
        assert_eq!(busy, None);
        assert_eq!(sent, [(1, us(2018) + LATENCY)]);
    }

    #[test]
    fn messages_of_a_closed_link_are_dropped_and_a_lost_one_is_late() {
        let mut net = star();
        let lost = net
            .send(LinkId(1), 0, Message::Interested, us(0), || true)
            .expect("sent");
        assert_eq!(lost.arrives_at, us(5) + LATENCY, "no loss configured");
        let mut lossy = Network::new(LATENCY, 0.5);
        lossy.add_node(1_000_000.0, None);
        lossy.add_node(1_000_000.0, None);
        let link = lossy.open(0, 1, PeerKey(0));
        let late = lossy
            .send(link, 0, Message::Interested, us(0), || true)
            .expect("sent");
        assert_eq!(
            late.arrives_at,
            us(5) + LATENCY + RETRANSMIT_TIMEOUT + 2 * LATENCY
        );
        net.close(LinkId(0), Duration::ZERO);
        assert!(
            net.send(LinkId(0), 0, Message::Interested, us(0), || false)
                .is_none()
        );
        assert_eq!(pump(&mut net, us(0)).1, []);
    }

    #[test]
    fn idle_uplink_time_is_split_by_whether_an_unchoked_peer_is_interested() {
        let mut net = star();
        let ms = |n: u64| Duration::from_millis(n);
        // 0-10 ms: nobody unchoked. 10 ms: node 0 unchokes node 1, which
        // is interested from 20 ms: idle with demand from then on.
        assert!(
            net.send(LinkId(0), 0, Message::Unchoke, ms(10), || false)
                .is_some()
        );
        assert!(
            net.send(LinkId(0), 1, Message::Interested, ms(20), || false)
                .is_some()
        );
        // 50 ms: a block of 1 ms (987 + 13 bytes at 1 byte/µs) goes out.
        assert!(
            net.send(LinkId(0), 0, block(987), ms(50), || false)
                .is_none()
        );
        let (busy, _) = pump(&mut net, ms(50));
        assert_eq!(busy, Some(ms(51)));
        net.uplink_done(0, ms(51));
        // 61 ms: node 1 loses interest; idle without demand until 100 ms.
        assert!(
            net.send(LinkId(0), 1, Message::NotInterested, ms(61), || false)
                .is_some()
        );
        let idle = net.uplink_idle(0, ms(100));
        // The 5 µs unchoke and its 5 µs moved the uplink's free instant.
        let close = |a: f64, b: f64| (a - b).abs() < 1e-4;
        assert!(close(idle.starved_s, 0.030 + 0.010), "{idle:?}");
        assert!(close(idle.no_demand_s, 0.020 + 0.039), "{idle:?}");
    }
}
