//! The time a flash crowd cannot beat: the fluid bound of Kumar and Ross
//! ("Peer-assisted file distribution: the minimum distribution time",
//! 2006), on payload bytes and on the bytes a shaped link really carries.

/// Upload and download rates of a swarm, bytes/s.
#[derive(Clone, Debug)]
pub struct Rates {
    /// The seeder's upload rate.
    pub seed_up: f64,
    /// Each leecher's upload rate.
    pub leecher_up: Vec<f64>,
    /// Each leecher's download rate (`f64::INFINITY`: not capped).
    pub leecher_down: Vec<f64>,
}

/// Link-layer bytes per payload byte of a full TCP segment: a 1500-byte
/// IPv4 MTU carries 1448 bytes of payload (20 IP + 20 TCP + 12 timestamp
/// option bytes), and `tbf` counts the 14-byte Ethernet header too.
const FRAME: f64 = 1514.0 / 1448.0;

/// The `piece` message header (BEP 3: length, id, index, begin) per
/// 16 KiB block.
const BLOCK: f64 = (16384.0 + 13.0) / 16384.0;

/// Uplink bytes of TCP acknowledgements per payload byte received: one
/// 66-byte ACK every two full segments (delayed ACK).
const ACKS: f64 = 66.0 / (2.0 * 1448.0);

/// Kumar-Ross lower bound on the time to give each leecher `size` bytes,
/// seconds: `max(F/u_s, F/d_min, N*F/(u_s + sum u_i))`.
pub fn fluid(size: f64, rates: &Rates) -> f64 {
    bound(size, size, rates)
}

/// The fluid bound counted in the bytes a link carries, seconds: every
/// payload byte costs 1514/1448 (Ethernet frame per TCP payload) x
/// 16397/16384 (`piece` header per block) bytes on the sender's uplink and
/// the receiver's downlink, and its acknowledgements 66/2896 bytes on the
/// receiver's uplink (which only the swarm-wide term feels).
pub fn wire(size: f64, rates: &Rates) -> f64 {
    bound(wire_copy(size), wire_copy(size) + size * ACKS, rates)
}

/// Bytes a sender's link carries to deliver `size` payload bytes in
/// `piece` messages over TCP/IPv4/Ethernet.
pub fn wire_copy(size: f64) -> f64 {
    size * FRAME * BLOCK
}

/// `max(one/u_s, one/d_min, N*all/(u_s + sum u_i))`: `one` is what one
/// copy costs a single link, `all` what it costs the uplinks together.
fn bound(one: f64, all: f64, rates: &Rates) -> f64 {
    let n = rates.leecher_up.len() as f64;
    let d_min = rates
        .leecher_down
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let total_up = rates.seed_up + rates.leecher_up.iter().sum::<f64>();
    (one / rates.seed_up)
        .max(one / d_min)
        .max(n * all / total_up)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(seed_up: f64, up: f64, down: f64, n: usize) -> Rates {
        Rates {
            seed_up,
            leecher_up: vec![up; n],
            leecher_down: vec![down; n],
        }
    }

    #[test]
    fn each_term_binds_in_its_regime() {
        // A slow seed: F/u_s.
        assert!((fluid(100.0, &rates(1.0, 10.0, f64::INFINITY, 5)) - 100.0).abs() < 1e-9);
        // A slow downlink: F/d_min.
        assert!((fluid(100.0, &rates(10.0, 10.0, 2.0, 5)) - 50.0).abs() < 1e-9);
        // Equal links: F/u_s still binds (12*100/130 < 10); slower
        // leechers: N*F/(u_s + N*u) = 1200/70.
        let swarm = fluid(100.0, &rates(10.0, 10.0, f64::INFINITY, 12));
        assert!((swarm - 10.0).abs() < 1e-9, "{swarm}");
        let many = fluid(100.0, &rates(10.0, 5.0, f64::INFINITY, 12));
        assert!((many - 1200.0 / 70.0).abs() < 1e-9, "{many}");
    }

    #[test]
    fn the_wire_costs_a_few_percent_more() {
        let r = rates(2.5e6, 2.5e6, f64::INFINITY, 12);
        let (f, w) = (fluid(64e6, &r), wire(64e6, &r));
        assert!(w / f > 1.04 && w / f < 1.08, "{}", w / f);
    }
}
