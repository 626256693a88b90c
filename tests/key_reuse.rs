//! Slab keys are reused; connection ids are not. Nothing meant for a closed connection may
//! reach the new connection that got its key.

mod util;

use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use mio_reactor::{
    CloseReason, Config, ConnId, Context, Handler, ListenOptions, TimerId, WriteError,
};
use util::{client, loopback, Server, WAIT};

/// Each connection: the first one arms a timer and closes; every later one tries to write
/// to the first one's id and reports what happened, and whether it ever got a timer.
struct Probe {
    first: Rc<RefCell<Option<ConnId>>>,
    report: mpsc::Sender<String>,
}

impl Handler for Probe {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let mut first = self.first.borrow_mut();
        match *first {
            None => {
                *first = Some(ctx.id());
                ctx.set_timer(Duration::from_millis(50));
                ctx.close();
            }
            Some(old) => {
                let same_key = old.key() == ctx.id().key();
                let write = ctx.write_to(old, b"meant for the old connection");
                let _ = self
                    .report
                    .send(format!("same_key={same_key} write={write:?}"));
                // Outlive the old connection's timer, to see that it does not fire here.
                ctx.set_timer(Duration::from_millis(200));
            }
        }
    }

    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
        let _ = self
            .report
            .send(format!("timer on {}: {timer:?}", ctx.id()));
        ctx.close();
    }

    fn on_close(&mut self, _: &mut Context<'_>, reason: &CloseReason) {
        let _ = self.report.send(format!("closed: {reason}"));
    }
}

#[test]
fn a_closed_connections_id_and_timers_never_reach_the_connection_that_reuses_its_key() {
    let (tx, reports) = mpsc::channel();
    let server = Server::start(Config::default(), move |reactor| {
        let first = Rc::new(RefCell::new(None));
        reactor.listen(loopback(), ListenOptions::default(), move |_| {
            Some(Probe {
                first: first.clone(),
                report: tx.clone(),
            })
        })
    });

    // The first connection closes itself; read to EOF so that it is fully gone.
    let mut first = client(server.addr);
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).unwrap();
    drop(first); // our EOF lets the server's graceful close complete at once
    assert_eq!(
        reports.recv_timeout(WAIT).unwrap(),
        "closed: closed locally"
    );

    let mut second = client(server.addr);
    assert_eq!(
        reports.recv_timeout(WAIT).unwrap(),
        format!(
            "same_key=true write={:?}",
            Err::<(), _>(WriteError::NoSuchConnection)
        ),
        "the key is reused, the id is not"
    );
    // The only timer the second connection sees is its own (the old one was armed for 50 ms,
    // this one for 200 ms), and then it closes.
    let timer_report = reports.recv_timeout(WAIT).unwrap();
    assert!(timer_report.starts_with("timer on"), "{timer_report}");
    second.read_to_end(&mut rest).unwrap();
    drop(second);
    assert_eq!(
        reports.recv_timeout(WAIT).unwrap(),
        "closed: closed locally"
    );
    let stats = server.stop();
    assert_eq!(stats.accepted, 2);
}

/// Arms a long timer, publishes its id, and reports whether it ever fires.
struct Victim {
    published: Rc<std::cell::Cell<Option<TimerId>>>,
    fired: mpsc::Sender<&'static str>,
}

impl Handler for Victim {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.published
            .set(Some(ctx.set_timer(Duration::from_millis(200))));
    }
    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }
    fn on_timer(&mut self, _: &mut Context<'_>, _: TimerId) {
        self.fired.send("victim's timer fired").unwrap();
    }
}

/// Tries to cancel a timer that belongs to another connection.
struct Meddler {
    victims_timer: Option<TimerId>,
    outcome: mpsc::Sender<&'static str>,
}

impl Handler for Meddler {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let cancelled = self.victims_timer.is_some_and(|t| ctx.cancel_timer(t));
        self.outcome
            .send(if cancelled { "cancelled" } else { "refused" })
            .unwrap();
    }
    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }
}

#[test]
fn a_handler_cannot_cancel_another_connections_timer() {
    let (tx, events) = mpsc::channel();
    let server = Server::start(Config::default(), move |reactor| {
        let timer = Rc::new(std::cell::Cell::new(None));
        let mut accepted = 0;
        reactor.listen(
            loopback(),
            ListenOptions::default(),
            move |_| -> Option<Box<dyn Handler>> {
                accepted += 1;
                if accepted == 1 {
                    Some(Box::new(Victim {
                        published: timer.clone(),
                        fired: tx.clone(),
                    }))
                } else {
                    Some(Box::new(Meddler {
                        victims_timer: timer.get(),
                        outcome: tx.clone(),
                    }))
                }
            },
        )
    });
    let victim = client(server.addr);
    let meddler = client(server.addr);
    assert_eq!(events.recv_timeout(WAIT).unwrap(), "refused");
    assert_eq!(events.recv_timeout(WAIT).unwrap(), "victim's timer fired");
    drop((victim, meddler));
    server.stop();
}
