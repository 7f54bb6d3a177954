//! The request counters behind `/metrics`: announces and scrapes by
//! transport, counted as they arrive.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// Labels of one series.
pub type Labels = Vec<(&'static str, String)>;

/// The transport a request came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP (BEP 3).
    Http,
    /// UDP (BEP 15).
    Udp,
}

impl Protocol {
    fn labels(self) -> Labels {
        let name = match self {
            Self::Http => "http",
            Self::Udp => "udp",
        };
        vec![("protocol", name.to_owned())]
    }
}

/// The counters kept between two scrapes of `/metrics`; everything else
/// is read from the tracker when `/metrics` is asked.
#[derive(Debug, Default)]
pub struct Counters {
    announces: Family<Labels, Counter>,
    scrapes: Family<Labels, Counter>,
}

impl Counters {
    /// Counts one announce.
    pub fn announced(&self, protocol: Protocol) {
        self.announces.get_or_create(&protocol.labels()).inc();
    }

    /// Counts one scrape.
    pub fn scraped(&self, protocol: Protocol) {
        self.scrapes.get_or_create(&protocol.labels()).inc();
    }

    /// The announces by protocol (a handle on the same counts).
    pub fn announces(&self) -> Family<Labels, Counter> {
        self.announces.clone()
    }

    /// The scrapes by protocol (a handle on the same counts).
    pub fn scrapes(&self) -> Family<Labels, Counter> {
        self.scrapes.clone()
    }
}
