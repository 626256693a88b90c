//! A panic in user code costs only what that code serves.
//!
//! The loop calls user code at a few boundaries: a connection's [`Handler`](crate::Handler)
//! (`Core::with_handler`, and `on_data` in `dispatch.rs`), a listener's
//! [`Factory`](crate::Factory), a [`DatagramHandler`](crate::DatagramHandler) and a watch's
//! handler. Each goes through [`call_user`], so that a panic is caught there, never unwinds
//! through the loop, and is reported as [`CloseReason::HandlerPanicked`](crate::CloseReason)
//! by whoever called. tokio (a panicking task), asyncio (the loop's exception handler) and
//! Netty (`exceptionCaught`) draw the same line.
//!
//! `AssertUnwindSafe` is sound here because the handler that panicked is dropped without
//! another call, and the reactor's own state is only changed through `Context` methods,
//! each of which leaves it consistent before it returns to the handler.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `call` (user code); with `catch` set, a panic in it becomes `Err(message)`.
///
/// With `catch` unset ([`Config::catch_panics`](crate::Config::catch_panics) false) the
/// panic goes on unwinding, through the loop, out of `run`.
pub(crate) fn call_user<R>(catch: bool, call: impl FnOnce() -> R) -> Result<R, String> {
    if !catch {
        return Ok(call());
    }
    catch_unwind(AssertUnwindSafe(call)).map_err(|payload| message(payload.as_ref()))
}

/// What `panic!` said: its payload is a `&str` or a `String` unless `panic_any` was used.
fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a payload that is not a string".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_gives_its_message() {
        let caught = call_user(true, || -> u8 { panic!("bad byte {}", 7) });
        assert_eq!(caught, Err("bad byte 7".to_string()));
    }

    #[test]
    fn a_panic_with_a_static_message_gives_it() {
        let caught = call_user(true, || -> u8 { panic!("static") });
        assert_eq!(caught, Err("static".to_string()));
    }

    #[test]
    fn a_panic_with_another_payload_is_still_described() {
        let caught = call_user(true, || -> u8 { std::panic::panic_any(42_u32) });
        assert!(caught.unwrap_err().contains("not a string"));
    }

    #[test]
    fn no_panic_returns_the_value() {
        assert_eq!(call_user(true, || 5), Ok(5));
    }

    #[test]
    #[should_panic(expected = "goes on")]
    fn without_catching_the_panic_goes_on() {
        let _ = call_user(false, || -> u8 { panic!("goes on") });
    }
}
