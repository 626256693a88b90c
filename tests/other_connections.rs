//! A handler can end *another* connection by id: a chat server's kick, a proxy passing on a
//! close. Ids of closed connections miss, as everywhere.

mod util;

use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::rc::Rc;
use std::sync::mpsc;

use mio_reactor::{CloseReason, Config, ConnId, Context, Handler, ListenOptions};
use util::{client, loopback, Server, WAIT};

/// The first connection is the moderator: a line "kick" closes the second connection
/// gracefully, "ban" aborts the third. Everyone reports how it closed.
struct Member {
    others: Rc<RefCell<Vec<ConnId>>>,
    outcomes: mpsc::Sender<String>,
}

impl Handler for Member {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.others.borrow_mut().push(ctx.id());
        self.outcomes
            .send(format!("joined {}", self.others.borrow().len()))
            .unwrap();
    }
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        let members = self.others.borrow().clone();
        let outcome = match data {
            b"kick" => ctx.close_conn(members[1]),
            b"ban" => ctx.abort_conn(members[2]),
            b"kick again" => ctx.close_conn(members[1]),
            _ => return data.len(),
        };
        let reply: &[u8] = if outcome {
            b"done\n"
        } else {
            b"no such member\n"
        };
        ctx.write(reply);
        data.len()
    }
    fn on_close(&mut self, _: &mut Context<'_>, reason: &CloseReason) {
        self.outcomes.send(format!("closed: {reason:?}")).unwrap();
    }
}

#[test]
fn a_handler_can_close_or_abort_another_connection_by_id() {
    let (tx, outcomes) = mpsc::channel();
    let server = Server::start(Config::default(), move |reactor| {
        let others = Rc::new(RefCell::new(Vec::new()));
        reactor.listen(loopback(), ListenOptions::default(), move |_| {
            Some(Member {
                others: others.clone(),
                outcomes: tx.clone(),
            })
        })
    });
    let mut moderator = client(server.addr);
    assert_eq!(outcomes.recv_timeout(WAIT).unwrap(), "joined 1");
    let mut kicked = client(server.addr);
    assert_eq!(outcomes.recv_timeout(WAIT).unwrap(), "joined 2");
    let mut banned = client(server.addr);
    assert_eq!(outcomes.recv_timeout(WAIT).unwrap(), "joined 3");

    let mut reply = [0; 5];
    moderator.write_all(b"kick").unwrap();
    moderator.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"done\n");
    let mut rest = Vec::new();
    kicked.read_to_end(&mut rest).unwrap(); // a clean EOF: a graceful close
    drop(kicked);
    assert_eq!(outcomes.recv_timeout(WAIT).unwrap(), "closed: Local");

    moderator.write_all(b"ban").unwrap();
    moderator.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"done\n");
    assert_eq!(outcomes.recv_timeout(WAIT).unwrap(), "closed: Aborted");
    let err = banned.read_to_end(&mut rest).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);

    // The kicked member's id now names nobody.
    moderator.write_all(b"kick again").unwrap();
    let mut refusal = [0; 15];
    moderator.read_exact(&mut refusal).unwrap();
    assert_eq!(&refusal, b"no such member\n");
    drop(moderator);
    server.stop();
}
