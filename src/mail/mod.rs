//! E-mail: what we send (`message`), the links it carries (`links`), the outbox every message
//! is written to in the transaction of the change that causes it (`outbox`), and the sender
//! thread that delivers it over SMTP (`sender`, `transport`).
pub mod links;
pub mod message;
pub mod outbox;
pub mod sender;
pub mod transport;

pub use message::{Mail, Notice};
pub use outbox::{Outbox, Recipient};
