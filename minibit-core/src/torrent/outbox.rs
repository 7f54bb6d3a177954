//! The queues a [`super::Torrent`] fills and the driver drains.

use std::collections::VecDeque;

use super::types::{Action, Event};

/// Pending actions and events, in the order they were produced.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    pub(super) actions: VecDeque<Action>,
    pub(super) events: VecDeque<Event>,
}

impl Outbox {
    /// Queues an action.
    pub(super) fn act(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    /// Queues an event.
    pub(super) fn report(&mut self, event: Event) {
        self.events.push_back(event);
    }
}
