//! The commands: a table of name, arity and handler, looked up case-insensitively, and
//! each command's rules and replies as Redis 7.0 has them (t_string.c, db.c, expire.c,
//! pubsub.c, server.c, config.c).
//!
//! A handler reads its arguments, changes the shared state and appends its reply to the
//! connection's output; what the connection itself must then do (close, send a large
//! value in pieces, deliver a published message) it returns as an [`After`].

use bytes::Bytes;
use mio_reactor::ConnId;

use crate::keyspace::{Lookup, Value};
use crate::pubsub::{Deliveries, Kind, Subscriptions};
use crate::resp::{reply, string_to_i64, Args};
use crate::server::{unix_millis, Server};

/// Values at least this long are sent in pieces as the client reads, not copied into the
/// output whole.
pub const STREAM_AT: usize = 64 * 1024;

/// One command being run.
pub struct Call<'a> {
    pub args: Args<'a>,
    pub server: &'a mut Server,
    pub id: ConnId,
    pub subscriptions: &'a mut Subscriptions,
    pub out: &'a mut Vec<u8>,
    /// The wall clock in Unix ms, read once per batch of requests, when first needed.
    pub now: &'a mut Option<i64>,
}

/// What the connection does after a command has written its reply.
#[derive(Debug)]
pub enum After {
    Continue,
    /// Close once the reply is sent (`QUIT`).
    Close,
    /// Send this value's bytes and `\r\n` after the reply so far (its bulk header).
    Stream(Bytes),
    /// Write these frames to these connections.
    Deliver(Deliveries),
}

/// A command of the table.
pub struct Command {
    /// Lower case, as Redis names it in errors (`config|get` for a subcommand).
    pub name: &'static str,
    /// Redis's arity: `n` exactly n arguments, `-n` at least n, the name included.
    pub arity: i32,
    /// Allowed while the client is subscribed (RESP2's pub/sub context).
    pub in_pubsub: bool,
    /// Key positions for `COMMAND INFO`: first, last (-1: the last argument), step.
    pub keys: (i64, i64, i64),
    pub run: fn(&mut Call<'_>) -> After,
}

impl Command {
    const fn new(name: &'static str, arity: i32, run: fn(&mut Call<'_>) -> After) -> Command {
        Command {
            name,
            arity,
            in_pubsub: false,
            keys: (0, 0, 0),
            run,
        }
    }

    const fn key(mut self, first: i64, last: i64) -> Command {
        self.keys = (first, last, 1);
        self
    }

    const fn pubsub(mut self) -> Command {
        self.in_pubsub = true;
        self
    }

    /// Whether `argc` arguments fit the arity.
    pub fn arity_fits(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }
}

/// Every command, in `COMMAND`'s order.
pub static COMMANDS: &[Command] = &[
    Command::new("get", 2, get).key(1, 1),
    Command::new("set", -3, set).key(1, 1),
    Command::new("getdel", 2, getdel).key(1, 1),
    Command::new("del", -2, del).key(1, -1),
    Command::new("exists", -2, exists).key(1, -1),
    Command::new("incr", 2, incr).key(1, 1),
    Command::new("decr", 2, decr).key(1, 1),
    Command::new("incrby", 3, incrby).key(1, 1),
    Command::new("decrby", 3, decrby).key(1, 1),
    Command::new("expire", -3, expire).key(1, 1),
    Command::new("pexpire", -3, pexpire).key(1, 1),
    Command::new("ttl", 2, ttl).key(1, 1),
    Command::new("pttl", 2, pttl).key(1, 1),
    Command::new("persist", 2, persist).key(1, 1),
    Command::new("dbsize", 1, dbsize),
    Command::new("flushall", -1, flush),
    Command::new("flushdb", -1, flush),
    Command::new("select", 2, select),
    Command::new("ping", -1, ping).pubsub(),
    Command::new("echo", 2, echo),
    Command::new("publish", 3, publish),
    Command::new("subscribe", -2, subscribe).pubsub(),
    Command::new("unsubscribe", -1, unsubscribe).pubsub(),
    Command::new("psubscribe", -2, psubscribe).pubsub(),
    Command::new("punsubscribe", -1, punsubscribe).pubsub(),
    Command::new("quit", -1, quit).pubsub(),
    Command::new("config", -2, container),
    Command::new("client", -2, container),
    Command::new("info", -1, info),
    Command::new("command", -1, command),
];

/// Subcommands of `CONFIG`, `CLIENT` and `COMMAND` (a container, then a subcommand).
static SUBCOMMANDS: &[(&str, Command)] = &[
    ("config", Command::new("config|get", -3, config_get)),
    (
        "client",
        Command::new("client|no-evict", 3, client_no_evict),
    ),
    ("command", Command::new("command|count", 2, command_count)),
    ("command", Command::new("command|info", -2, command_info)),
    ("command", Command::new("command|docs", -2, command_docs)),
];

/// Finds the command that `args` names, case-insensitively, or the error text to reply.
pub fn lookup(args: &Args<'_>) -> Result<&'static Command, Vec<u8>> {
    let name = args.get(0);
    let found = find(COMMANDS, name, |command| command.name);
    match found {
        Some(command) if ["config", "client", "command"].contains(&command.name) => {
            if args.len() < 2 {
                // `CONFIG` alone fails its arity check; `COMMAND` alone lists every command.
                return Ok(command);
            }
            let sub = args.get(1);
            SUBCOMMANDS
                .iter()
                .filter(|(container, _)| *container == command.name)
                .map(|(_, sub)| sub)
                .find(|candidate| {
                    let (_, sub_name) = candidate.name.split_once('|').expect("container|sub");
                    sub.eq_ignore_ascii_case(sub_name.as_bytes())
                })
                .ok_or_else(|| unknown_subcommand(command.name, sub))
        }
        Some(command) => Ok(command),
        None => Err(unknown_command(args)),
    }
}

fn find<T>(table: &'static [T], name: &[u8], name_of: impl Fn(&T) -> &str) -> Option<&'static T> {
    table
        .iter()
        .find(|entry| name.eq_ignore_ascii_case(name_of(entry).as_bytes()))
}

/// A C string's view of `bytes`: up to the first NUL, and at most `max` bytes (Redis
/// formats arguments with `%.*s`).
fn c_string(bytes: &[u8], max: usize) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end.min(max)]
}

/// `unknown command 'foo', with args beginning with: 'a' 'b' ` (server.c,
/// `commandCheckExistence`): the arguments until 128 bytes of them are quoted.
fn unknown_command(args: &Args<'_>) -> Vec<u8> {
    let mut quoted = Vec::new();
    for arg in args.from(1) {
        if quoted.len() >= 128 {
            break;
        }
        quoted.push(b'\'');
        let room = 128 - quoted.len() + 1;
        quoted.extend_from_slice(c_string(arg, room));
        quoted.extend_from_slice(b"' ");
    }
    let mut text = b"unknown command '".to_vec();
    text.extend_from_slice(c_string(args.get(0), 128));
    text.extend_from_slice(b"', with args beginning with: ");
    text.extend_from_slice(&quoted);
    text
}

fn unknown_subcommand(container: &str, sub: &[u8]) -> Vec<u8> {
    let mut text = b"unknown subcommand '".to_vec();
    text.extend_from_slice(c_string(sub, 128));
    text.extend_from_slice(b"'. Try ");
    text.extend_from_slice(container.to_ascii_uppercase().as_bytes());
    text.extend_from_slice(b" HELP.");
    text
}

/// `wrong number of arguments for 'get' command`.
pub fn wrong_arity(command: &Command) -> Vec<u8> {
    format!("wrong number of arguments for '{}' command", command.name).into_bytes()
}

/// The error a subscribed RESP2 client gets for any other command.
pub fn not_in_pubsub(command: &Command) -> Vec<u8> {
    format!(
        "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET \
         are allowed in this context",
        command.name
    )
    .into_bytes()
}

/// Replies with a value (or null): small ones copied into the output, large ones streamed
/// (their bytes shared, not copied).
fn reply_value(out: &mut Vec<u8>, value: Option<&Value>) -> After {
    match value {
        None => {
            out.extend_from_slice(reply::NULL);
            After::Continue
        }
        Some(Value::Integer(n)) => {
            reply::bulk_integer(out, *n);
            After::Continue
        }
        Some(Value::Bytes(bytes)) if bytes.len() >= STREAM_AT => {
            reply::bulk_header(out, bytes.len());
            After::Stream(bytes.clone())
        }
        Some(Value::Bytes(bytes)) => {
            reply::bulk(out, bytes);
            After::Continue
        }
    }
}

const NOT_AN_INTEGER: &[u8] = b"value is not an integer or out of range";
const SYNTAX_ERROR: &[u8] = b"syntax error";

impl Call<'_> {
    fn now(&mut self) -> i64 {
        *self.now.get_or_insert_with(unix_millis)
    }

    fn error(&mut self, text: &[u8]) -> After {
        reply::error(self.out, text);
        After::Continue
    }

    fn integer(&mut self, n: i64) -> After {
        reply::integer(self.out, n);
        After::Continue
    }

    fn ok(&mut self) -> After {
        self.out.extend_from_slice(reply::OK);
        After::Continue
    }

    /// Argument `i` as an integer, or `None` after replying Redis's error.
    fn integer_arg(&mut self, i: usize) -> Option<i64> {
        let parsed = string_to_i64(self.args.get(i));
        if parsed.is_none() {
            reply::error(self.out, NOT_AN_INTEGER);
        }
        parsed
    }

    /// A copy of `key`'s value (sharing the bytes), or `None`.
    fn lookup(&mut self, key: &[u8]) -> Option<Value> {
        let now = self.now_if_volatile();
        self.server.keyspace.get(key, now)
    }

    /// The clock, read only if some key has an expiry (otherwise no key can have expired).
    fn now_if_volatile(&mut self) -> i64 {
        if self.server.keyspace.volatile_len() == 0 {
            i64::MIN
        } else {
            self.now()
        }
    }
}

fn get(call: &mut Call<'_>) -> After {
    let key = call.args.get(1);
    let now = call.now_if_volatile();
    match call.server.keyspace.peek(key, now) {
        Lookup::Live(value, _) => reply_value(call.out, Some(value)),
        Lookup::Expired => {
            call.server.keyspace.remove(key);
            reply_value(call.out, None)
        }
        Lookup::Missing => reply_value(call.out, None),
    }
}

fn getdel(call: &mut Call<'_>) -> After {
    let key = call.args.get(1);
    let value = call.lookup(key);
    if value.is_some() {
        call.server.keyspace.remove(key);
    }
    reply_value(call.out, value.as_ref())
}

/// `SET`'s options (t_string.c, `parseExtendedStringArgumentsOrReply`): each may appear
/// where the others it conflicts with do not; a repeated one is allowed.
#[derive(Debug, Default)]
struct SetOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    /// EX's or PX's argument position and whether it is in seconds.
    expire: Option<(usize, bool)>,
}

fn parse_set_options(args: &Args<'_>) -> Option<SetOptions> {
    let mut options = SetOptions::default();
    let mut i = 3;
    while i < args.len() {
        let option = args.get(i).to_ascii_lowercase();
        let has_next = i + 1 < args.len();
        let expire_unit = options.expire.map(|(_, seconds)| seconds);
        match option.as_slice() {
            b"nx" if !options.xx => options.nx = true,
            b"xx" if !options.nx => options.xx = true,
            b"get" => options.get = true,
            b"keepttl" if options.expire.is_none() => options.keep_ttl = true,
            b"ex" if !options.keep_ttl && expire_unit != Some(false) && has_next => {
                options.expire = Some((i + 1, true));
                i += 1;
            }
            b"px" if !options.keep_ttl && expire_unit != Some(true) && has_next => {
                options.expire = Some((i + 1, false));
                i += 1;
            }
            _ => return None,
        }
        i += 1;
    }
    Some(options)
}

fn set(call: &mut Call<'_>) -> After {
    let Some(options) = parse_set_options(&call.args) else {
        return call.error(SYNTAX_ERROR);
    };
    let expires_at = match options.expire {
        None => None,
        Some((at, seconds)) => match expiry_from_now(call, at, seconds, "set") {
            Some(when) => Some(when),
            None => return After::Continue,
        },
    };
    let key = call.args.get(1);
    let mut after = After::Continue;
    if options.get {
        let old = call.lookup(key);
        after = reply_value(call.out, old.as_ref());
    }
    let conditional = options.nx || options.xx;
    let found = conditional && {
        let now = call.now_if_volatile();
        call.server.keyspace.contains(key, now)
    };
    if conditional && (options.nx == found) {
        if !options.get {
            call.out.extend_from_slice(reply::NULL);
        }
        return after;
    }
    let value = Value::Bytes(Bytes::copy_from_slice(call.args.get(2)));
    call.server
        .keyspace
        .set(key, value, expires_at, options.keep_ttl);
    if !options.get {
        call.out.extend_from_slice(reply::OK);
    }
    after
}

/// `SET`'s EX/PX argument at `at` as a Unix ms time, or `None` after replying the error
/// (`getExpireMillisecondsOrReply`): not positive, or overflowing, is an invalid time.
fn expiry_from_now(call: &mut Call<'_>, at: usize, seconds: bool, command: &str) -> Option<i64> {
    let amount = call.integer_arg(at)?;
    let millis = if seconds {
        amount.checked_mul(1000).filter(|_| amount > 0)
    } else {
        Some(amount).filter(|&ms| ms > 0)
    };
    let when = millis.and_then(|ms| ms.checked_add(call.now()));
    if when.is_none() {
        let text = format!("invalid expire time in '{command}' command");
        reply::error(call.out, text.as_bytes());
    }
    when
}

fn del(call: &mut Call<'_>) -> After {
    let now = call.now_if_volatile();
    let mut removed = 0;
    for key in call.args.from(1) {
        if call.server.keyspace.contains(key, now) {
            call.server.keyspace.remove(key);
            removed += 1;
        }
    }
    call.integer(removed)
}

fn exists(call: &mut Call<'_>) -> After {
    let now = call.now_if_volatile();
    let found = call
        .args
        .from(1)
        .filter(|key| call.server.keyspace.contains(key, now))
        .count();
    call.integer(found as i64)
}

/// `INCRBY`'s work (t_string.c, `incrDecrCommand`): the value must be an integer; the sum
/// must fit in 64 bits; the key keeps its expiry.
fn add(call: &mut Call<'_>, increment: i64) -> After {
    let key = call.args.get(1);
    let now = call.now_if_volatile();
    let value = call.server.keyspace.get_mut(key, now);
    let current = match value.as_deref() {
        None => 0,
        Some(Value::Integer(n)) => *n,
        Some(Value::Bytes(bytes)) => match string_to_i64(bytes) {
            Some(n) => n,
            None => return call.error(NOT_AN_INTEGER),
        },
    };
    let Some(sum) = current.checked_add(increment) else {
        return call.error(b"increment or decrement would overflow");
    };
    match value {
        Some(value) => *value = Value::Integer(sum),
        None => call
            .server
            .keyspace
            .set(key, Value::Integer(sum), None, false),
    }
    call.integer(sum)
}

fn incr(call: &mut Call<'_>) -> After {
    add(call, 1)
}

fn decr(call: &mut Call<'_>) -> After {
    add(call, -1)
}

fn incrby(call: &mut Call<'_>) -> After {
    match call.integer_arg(2) {
        Some(increment) => add(call, increment),
        None => After::Continue,
    }
}

fn decrby(call: &mut Call<'_>) -> After {
    match call.integer_arg(2) {
        // Redis refuses to negate i64::MIN rather than wrap.
        Some(i64::MIN) => call.error(b"decrement would overflow"),
        Some(decrement) => add(call, -decrement),
        None => After::Continue,
    }
}

/// `EXPIRE`'s conditions.
#[derive(Debug, Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_expire_flags(call: &mut Call<'_>) -> Option<ExpireFlags> {
    let mut flags = ExpireFlags::default();
    for option in call.args.from(3) {
        match option.to_ascii_lowercase().as_slice() {
            b"nx" => flags.nx = true,
            b"xx" => flags.xx = true,
            b"gt" => flags.gt = true,
            b"lt" => flags.lt = true,
            _ => {
                let mut text = b"Unsupported option ".to_vec();
                text.extend_from_slice(c_string(option, usize::MAX));
                reply::error(call.out, &text);
                return None;
            }
        }
    }
    if flags.nx && (flags.xx || flags.gt || flags.lt) {
        reply::error(
            call.out,
            b"NX and XX, GT or LT options at the same time are not compatible",
        );
        return None;
    }
    if flags.gt && flags.lt {
        reply::error(
            call.out,
            b"GT and LT options at the same time are not compatible",
        );
        return None;
    }
    Some(flags)
}

/// `EXPIRE` and `PEXPIRE` (expire.c, `expireGenericCommand`).
fn expire_generic(call: &mut Call<'_>, seconds: bool) -> After {
    let Some(flags) = parse_expire_flags(call) else {
        return After::Continue;
    };
    let Some(amount) = call.integer_arg(2) else {
        return After::Continue;
    };
    let now = call.now();
    let when = if seconds {
        amount.checked_mul(1000)
    } else {
        Some(amount)
    }
    .and_then(|ms| ms.checked_add(now));
    let Some(when) = when else {
        let name = if seconds { "expire" } else { "pexpire" };
        let text = format!("invalid expire time in '{name}' command");
        return call.error(text.as_bytes());
    };
    let key = call.args.get(1);
    let Some(current) = call.server.keyspace.expiry(key, now) else {
        return call.integer(0);
    };
    let refused = (flags.nx && current.is_some())
        || (flags.xx && current.is_none())
        || (flags.gt && current.is_none_or(|current| when <= current))
        || (flags.lt && current.is_some_and(|current| when >= current));
    if refused {
        return call.integer(0);
    }
    if when <= now {
        call.server.keyspace.remove(key);
    } else {
        call.server.keyspace.set_expiry(key, Some(when));
    }
    call.integer(1)
}

fn expire(call: &mut Call<'_>) -> After {
    expire_generic(call, true)
}

fn pexpire(call: &mut Call<'_>) -> After {
    expire_generic(call, false)
}

/// `TTL` and `PTTL`: -2 no key, -1 no expiry, else what is left (seconds rounded).
fn ttl_generic(call: &mut Call<'_>, millis: bool) -> After {
    let now = call.now();
    let reply = match call.server.keyspace.expiry(call.args.get(1), now) {
        None => -2,
        Some(None) => -1,
        Some(Some(when)) => {
            let left = (when - now).max(0);
            if millis {
                left
            } else {
                (left + 500) / 1000
            }
        }
    };
    call.integer(reply)
}

fn ttl(call: &mut Call<'_>) -> After {
    ttl_generic(call, false)
}

fn pttl(call: &mut Call<'_>) -> After {
    ttl_generic(call, true)
}

fn persist(call: &mut Call<'_>) -> After {
    let key = call.args.get(1);
    let now = call.now_if_volatile();
    let had_expiry = matches!(call.server.keyspace.expiry(key, now), Some(Some(_)));
    if had_expiry {
        call.server.keyspace.set_expiry(key, None);
    }
    call.integer(i64::from(had_expiry))
}

fn dbsize(call: &mut Call<'_>) -> After {
    let keys = call.server.keyspace.len();
    call.integer(keys as i64)
}

/// `FLUSHALL` and `FLUSHDB`, with `SYNC` or `ASYNC` (both flush at once here).
fn flush(call: &mut Call<'_>) -> After {
    let mode_ok = match call.args.len() {
        1 => true,
        2 => {
            let mode = call.args.get(1);
            mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async")
        }
        _ => false,
    };
    if !mode_ok {
        return call.error(SYNTAX_ERROR);
    }
    call.server.keyspace.clear();
    call.ok()
}

/// `SELECT`: the one database is 0 (Redis's `databases 1`); the index must be an `int`.
fn select(call: &mut Call<'_>) -> After {
    match string_to_i64(call.args.get(1)) {
        None => call.error(NOT_AN_INTEGER),
        Some(index) if i32::try_from(index).is_err() => {
            call.error(b"value is out of range, value must between -2147483648 and 2147483647")
        }
        Some(0) => call.ok(),
        Some(_) => call.error(b"DB index is out of range"),
    }
}

/// `PING [message]`; in the pub/sub context RESP2 answers `["pong", message]`.
fn ping(call: &mut Call<'_>) -> After {
    if call.args.len() > 2 {
        return call.error(b"wrong number of arguments for 'ping' command");
    }
    let message = (call.args.len() == 2).then(|| call.args.get(1));
    if call.subscriptions.count() > 0 {
        reply::array(call.out, 2);
        reply::bulk(call.out, b"pong");
        reply::bulk(call.out, message.unwrap_or(b""));
    } else {
        match message {
            None => reply::simple(call.out, b"PONG"),
            Some(message) => reply::bulk(call.out, message),
        }
    }
    After::Continue
}

fn echo(call: &mut Call<'_>) -> After {
    reply::bulk(call.out, call.args.get(1));
    After::Continue
}

fn publish(call: &mut Call<'_>) -> After {
    let deliveries = call
        .server
        .pubsub
        .deliveries(call.args.get(1), call.args.get(2));
    reply::integer(call.out, deliveries.targets.len() as i64);
    After::Deliver(deliveries)
}

fn subscribe_generic(call: &mut Call<'_>, kind: Kind) -> After {
    call.server.pubsub.subscribe(
        kind,
        call.id,
        call.subscriptions,
        call.args.from(1),
        call.out,
    );
    After::Continue
}

fn unsubscribe_generic(call: &mut Call<'_>, kind: Kind) -> After {
    let names = call.args.from(1).map(Bytes::copy_from_slice).collect();
    call.server
        .pubsub
        .unsubscribe(kind, call.id, call.subscriptions, names, call.out);
    After::Continue
}

fn subscribe(call: &mut Call<'_>) -> After {
    subscribe_generic(call, Kind::Channel)
}

fn psubscribe(call: &mut Call<'_>) -> After {
    subscribe_generic(call, Kind::Pattern)
}

fn unsubscribe(call: &mut Call<'_>) -> After {
    unsubscribe_generic(call, Kind::Channel)
}

fn punsubscribe(call: &mut Call<'_>) -> After {
    unsubscribe_generic(call, Kind::Pattern)
}

fn quit(call: &mut Call<'_>) -> After {
    call.ok();
    After::Close
}

/// `CLIENT NO-EVICT on|off`: whether client eviction (`maxmemory-clients`) may close
/// this client; it still counts in the total.
fn client_no_evict(call: &mut Call<'_>) -> After {
    let no_evict = match call.args.get(2) {
        on if on.eq_ignore_ascii_case(b"on") => true,
        off if off.eq_ignore_ascii_case(b"off") => false,
        _ => return call.error(SYNTAX_ERROR),
    };
    call.server.memory.set_no_evict(call.id, no_evict);
    call.ok()
}

/// `CONFIG` and `CLIENT` never run themselves: alone they fail their arity check, and with a subcommand
/// [`lookup`] finds that instead.
fn container(call: &mut Call<'_>) -> After {
    call.error(SYNTAX_ERROR)
}

/// `CONFIG GET pattern...`: the parameters this server has, as name/value pairs.
fn config_get(call: &mut Call<'_>) -> After {
    let settings = &call.server.settings;
    let pubsub_limit = format!(
        "normal 0 0 0 slave 268435456 67108864 60 pubsub {} {} {}",
        settings.pubsub_hard,
        settings.pubsub_soft,
        settings.pubsub_soft_time.as_secs()
    );
    let parameters: [(&str, String); 9] = [
        ("save", String::new()),
        ("appendonly", "no".into()),
        ("databases", "1".into()),
        ("maxclients", settings.max_clients.to_string()),
        (
            "timeout",
            settings.timeout.map_or(0, |t| t.as_secs()).to_string(),
        ),
        ("hz", settings.hz.to_string()),
        ("proto-max-bulk-len", settings.max_bulk.to_string()),
        ("client-output-buffer-limit", pubsub_limit),
        ("maxmemory-clients", call.server.memory.limit().to_string()),
    ];
    let mut pairs = Vec::new();
    for (name, value) in &parameters {
        let wanted = call.args.from(2).any(|pattern| {
            crate::pubsub::glob_match(&pattern.to_ascii_lowercase(), name.as_bytes())
        });
        if wanted {
            pairs.push((name, value));
        }
    }
    reply::array(call.out, pairs.len() * 2);
    for (name, value) in pairs {
        reply::bulk(call.out, name.as_bytes());
        reply::bulk(call.out, value.as_bytes());
    }
    After::Continue
}

/// `INFO [section...]`: the server, clients, memory, stats and keyspace sections.
fn info(call: &mut Call<'_>) -> After {
    let server = &call.server;
    let sections: [(&str, String); 5] = [
        (
            "server",
            format!(
                "redis_version:7.0.15\r\nredis_mode:standalone\r\narch_bits:64\r\n\
                 process_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nhz:{}\r\n",
                std::process::id(),
                server.settings.port,
                server.started.elapsed().as_secs(),
                server.settings.hz
            ),
        ),
        (
            "clients",
            format!(
                "connected_clients:{}\r\nmaxclients:{}\r\n",
                server.clients, server.settings.max_clients
            ),
        ),
        (
            "memory",
            // Redis 7's figure for normal and pub/sub clients together.
            format!("mem_clients_normal:{}\r\n", server.memory.total()),
        ),
        (
            "stats",
            format!("evicted_clients:{}\r\n", server.memory.evicted()),
        ),
        (
            "keyspace",
            if server.keyspace.len() == 0 {
                String::new()
            } else {
                format!(
                    "db0:keys={},expires={},avg_ttl=0\r\n",
                    server.keyspace.len(),
                    server.keyspace.volatile_len()
                )
            },
        ),
    ];
    let everything = call.args.len() == 1
        || call.args.from(1).any(|wanted| {
            ["all", "everything", "default"]
                .iter()
                .any(|all| wanted.eq_ignore_ascii_case(all.as_bytes()))
        });
    let mut text = String::new();
    for (name, body) in &sections {
        let wanted = everything
            || call
                .args
                .from(1)
                .any(|wanted| wanted.eq_ignore_ascii_case(name.as_bytes()));
        if wanted {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            let title = format!("# {}{}\r\n", name[..1].to_uppercase(), &name[1..]);
            text.push_str(&title);
            text.push_str(body);
        }
    }
    reply::bulk(call.out, text.as_bytes());
    After::Continue
}

/// One command's `COMMAND INFO` entry, in Redis 7.0's ten-field shape (flags, ACL
/// categories, tips, key specs and subcommands left empty).
fn write_command_info(out: &mut Vec<u8>, command: &Command) {
    reply::array(out, 10);
    reply::bulk(out, command.name.as_bytes());
    reply::integer(out, i64::from(command.arity));
    reply::array(out, 0);
    reply::integer(out, command.keys.0);
    reply::integer(out, command.keys.1);
    reply::integer(out, command.keys.2);
    for _ in 0..4 {
        reply::array(out, 0);
    }
}

/// `COMMAND`: every command's info.
fn command(call: &mut Call<'_>) -> After {
    reply::array(call.out, COMMANDS.len());
    for command in COMMANDS {
        write_command_info(call.out, command);
    }
    After::Continue
}

fn command_count(call: &mut Call<'_>) -> After {
    call.integer(COMMANDS.len() as i64)
}

/// `COMMAND INFO name...`: null for a name that is no command; every command without names.
fn command_info(call: &mut Call<'_>) -> After {
    if call.args.len() == 2 {
        return command(call);
    }
    reply::array(call.out, call.args.len() - 2);
    for name in call.args.from(2) {
        match find(COMMANDS, name, |command| command.name) {
            Some(command) => write_command_info(call.out, command),
            None => call.out.extend_from_slice(b"*-1\r\n"),
        }
    }
    After::Continue
}

/// `COMMAND DOCS`: no documentation here; an empty map tells `redis-cli` to use its own.
fn command_docs(call: &mut Call<'_>) -> After {
    reply::array(call.out, 0);
    After::Continue
}
