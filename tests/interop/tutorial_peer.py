#!/usr/bin/env python3
"""A peer for the "custom header + content" protocol of the Python sockets tutorial.

Speaks the wire format that mio-reactor's `protocol` module implements, and behaves like the
tutorial's client and server, so the Rust side can be tested against an independent
implementation (this one, written from the format description, stdlib only).

Wire format, both directions:
    2 bytes   unsigned big-endian length H of the JSON header
    H bytes   UTF-8 JSON object: byteorder, content-type, content-encoding, content-length
    C bytes   content, C = content-length; text/json + utf-8 means a JSON document

Usage:
    tutorial_peer.py client HOST PORT ACTION VALUE [--timeout SECONDS]
        Sends one request: action "search" -> text/json {"action": ..., "value": ...};
        anything else -> binary/custom-client-binary-type with content ACTION+VALUE (UTF-8).
        Reads exactly one reply frame and prints it as one JSON line on stdout:
        the reply object itself for text/json (e.g. {"result": ...}), or
        {"binary": "<repr of bytes>", "content-type": ...} for other content types.
        Exit 0 on success; exit 1 with a message on stderr on any error, including a
        text/json reply carrying an "error" key (the reply is still printed).

    tutorial_peer.py client HOST PORT ACTION VALUE --cafile FILE [--server-hostname NAME]
        The same over TLS (Python's ssl module), trusting the CA certificates in FILE and
        checking the server's certificate against NAME (default localhost). First prints
        {"tls": {"version": ..., "cipher": ...}} as negotiated, then the reply line.

    tutorial_peer.py server HOST PORT [--count N]
        Serves one request per connection (reply, then close) with selectors. Prints
        {"listening": {"host": ..., "port": ...}} once bound (PORT 0 picks a free port).
        Exits after N connections have been closed if --count is given.
"""

import argparse
import errno
import json
import os
import selectors
import socket
import ssl
import struct
import sys
import time

PREFIX = struct.Struct(">H")
MAX_HEADER = 16 * 1024
MAX_CONTENT = 1024 * 1024
REQUIRED_KEYS = ("byteorder", "content-type", "content-encoding", "content-length")
CLIENT_BINARY_TYPE = "binary/custom-client-binary-type"
SERVER_BINARY_TYPE = "binary/custom-server-binary-type"

SEARCH_TABLE = {
    "morpheus": "Follow the white rabbit. \U0001f430",
    "ring": "In the caves beneath the Misty Mountains. \U0001f48d",
    "\U0001f436": "\U0001f43e Playing ball! \U0001f3d0",
}


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame."""


# --- encoding -----------------------------------------------------------------------------


def encode_frame(content_type, content_encoding, content):
    """One whole frame: prefix, header, content (bytes)."""
    header = {
        "byteorder": sys.byteorder,
        "content-type": content_type,
        "content-encoding": content_encoding,
        "content-length": len(content),
    }
    header_bytes = json.dumps(header, ensure_ascii=False).encode("utf-8")
    if len(header_bytes) > 0xFFFF:
        raise ValueError("header does not fit the 2-byte length prefix")
    return PREFIX.pack(len(header_bytes)) + header_bytes + content


def encode_json(obj):
    content = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return encode_frame("text/json", "utf-8", content)


# --- decoding -----------------------------------------------------------------------------


class FrameReader:
    """Incremental decoder: feed() bytes, get (header, content) once a frame is complete.

    The header is parsed once and kept while content arrives, and limits are checked as soon
    as the prefix or header is known, like the Rust decoder.
    """

    def __init__(self):
        self.buffer = b""
        self.header = None
        self.header_end = 0

    def feed(self, data):
        self.buffer += data
        if self.header is None and not self._parse_header():
            return None
        frame_end = self.header_end + self.header["content-length"]
        if len(self.buffer) < frame_end:
            return None
        frame = (self.header, self.buffer[self.header_end:frame_end])
        self.buffer = self.buffer[frame_end:]
        self.header = None
        return frame

    def is_mid_frame(self):
        return bool(self.buffer) or self.header is not None

    def _parse_header(self):
        if len(self.buffer) < PREFIX.size:
            return False
        (header_len,) = PREFIX.unpack_from(self.buffer)
        if header_len == 0:
            raise ProtocolError("header length is zero")
        if header_len > MAX_HEADER:
            raise ProtocolError(f"header length {header_len} exceeds {MAX_HEADER}")
        end = PREFIX.size + header_len
        if len(self.buffer) < end:
            return False
        self.header = parse_header(self.buffer[PREFIX.size:end])
        self.header_end = end
        return True


def parse_header(raw):
    try:
        header = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProtocolError("header is not valid UTF-8") from None
    except ValueError as e:
        raise ProtocolError(f"header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not a JSON object")
    for key in REQUIRED_KEYS:
        if key not in header:
            raise ProtocolError(f"header is missing required key {key!r}")
    for key in REQUIRED_KEYS[:3]:
        if not isinstance(header[key], str):
            raise ProtocolError(f"header key {key!r} must be a string")
    length = header["content-length"]
    # bool is an int subclass in Python; JSON true is not a length.
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ProtocolError(f"content-length {length!r} is not a non-negative integer")
    if length > MAX_CONTENT:
        raise ProtocolError(f"content-length {length} exceeds {MAX_CONTENT}")
    return header


def decode_content(header, content):
    """text/json -> the JSON value; anything else -> the bytes."""
    if header["content-type"] != "text/json":
        return content
    encoding = header["content-encoding"]
    if encoding.lower() not in ("utf-8", "utf8"):
        raise ProtocolError(f"unsupported content-encoding {encoding!r} for text/json")
    try:
        return json.loads(content.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProtocolError("text/json content is not valid UTF-8") from None
    except ValueError as e:
        raise ProtocolError(f"text/json content is not valid JSON: {e}") from None


def print_json(obj):
    """One JSON line on stdout, UTF-8 whatever the locale says."""
    sys.stdout.buffer.write(json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n")
    sys.stdout.buffer.flush()


# --- client -------------------------------------------------------------------------------


def build_request(action, value):
    if action == "search":
        return encode_json({"action": action, "value": value})
    return encode_frame(CLIENT_BINARY_TYPE, "binary", (action + value).encode("utf-8"))


def run_client(host, port, action, value, timeout):
    request = build_request(action, value)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setblocking(False)
    err = sock.connect_ex((host, port))
    if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
        sock.close()
        raise ConnectionError(f"connect failed: {os.strerror(err)}")
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_WRITE)
    reader = FrameReader()
    deadline = time.monotonic() + timeout
    try:
        frame = client_loop(sel, sock, request, reader, deadline)
    finally:
        sel.close()
        sock.close()
    return report_reply(*frame)


def client_loop(sel, sock, request, reader, deadline):
    """Send the request, then read until one reply frame is complete."""
    connected = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not sel.select(remaining):
            raise TimeoutError("timed out waiting for the server")
        if request:
            if not connected:
                # Writable after a non-blocking connect may mean it failed.
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise ConnectionError(f"connect failed: {os.strerror(err)}")
                connected = True
            try:
                request = request[sock.send(request):]
            except BlockingIOError:
                continue
            if not request:
                sel.modify(sock, selectors.EVENT_READ)
            continue
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            continue
        frame = feed_reply(reader, data)
        if frame is not None:
            return frame


def feed_reply(reader, data):
    """The reply frame once `data` completes it; empty `data` is the server's EOF."""
    if not data:
        if reader.is_mid_frame():
            raise ProtocolError(f"server closed mid-frame with {len(reader.buffer)} bytes")
        raise ConnectionError("server closed the connection without replying")
    return reader.feed(data)


def run_tls_client(host, port, action, value, timeout, cafile, server_hostname):
    """One request over TLS, with Python's ssl module.

    A blocking socket with a deadline, not the selectors loop: a non-blocking ssl socket
    needs its own want-read/want-write handling, and what this checks is the wire format
    over another TLS stack, not Python's event loop.
    """
    context = ssl.create_default_context(cafile=cafile)
    request = build_request(action, value)
    reader = FrameReader()
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=server_hostname) as tls:
            print_json({"tls": {"version": tls.version(), "cipher": tls.cipher()[0]}})
            tls.sendall(request)
            frame = None
            while frame is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("timed out waiting for the server")
                tls.settimeout(remaining)
                frame = feed_reply(reader, tls.recv(65536))
            # Our close_notify, and the server's (sent after its reply): a clean TLS close.
            tls.unwrap()
    return report_reply(*frame)


def report_reply(header, content):
    decoded = decode_content(header, content)
    if isinstance(decoded, bytes):
        print_json({"binary": repr(decoded), "content-type": header["content-type"]})
        return 0
    print_json(decoded)
    if isinstance(decoded, dict) and "error" in decoded:
        print(f"error reply: {decoded['error']}", file=sys.stderr)
        return 1
    return 0


# --- server -------------------------------------------------------------------------------


def answer(request):
    """The tutorial server's reply to one decoded request: (frame bytes)."""
    if isinstance(request, bytes):
        content = b"First 10 bytes of request: " + request[:10]
        return encode_frame(SERVER_BINARY_TYPE, "binary", content)
    if not isinstance(request, dict):
        return encode_json({"error": "request must be a JSON object"})
    action = request.get("action")
    if action == "search":
        query = request.get("value")
        result = SEARCH_TABLE.get(query, f"No match for '{query}'.")
    else:
        result = f"Error: invalid action '{action}'."
    return encode_json({"result": result})


class Connection:
    """One client: read one request, write the reply, close."""

    def __init__(self, sel, sock):
        self.sel = sel
        self.sock = sock
        self.reader = FrameReader()
        self.output = b""
        sel.register(sock, selectors.EVENT_READ, self)

    def on_event(self, mask):
        """Returns True once the connection is closed."""
        try:
            if mask & selectors.EVENT_READ and not self.output:
                self.on_readable()
            if self.output and mask & selectors.EVENT_WRITE:
                self.on_writable()
        except OSError as e:
            print(f"server: {e}", file=sys.stderr)
            self.output = b""
            return self.close()
        return self.sock is None

    def on_readable(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        if not data:
            if self.reader.is_mid_frame():
                print("server: peer closed mid-frame", file=sys.stderr)
            self.close()
            return
        try:
            frame = self.reader.feed(data)
            if frame is None:
                return
            reply = answer(decode_content(*frame))
        except ProtocolError as e:
            print(f"server: bad request: {e}", file=sys.stderr)
            reply = encode_json({"error": str(e)})
        # One request per connection: stop reading, start writing.
        self.output = reply
        self.sel.modify(self.sock, selectors.EVENT_WRITE, self)

    def on_writable(self):
        try:
            self.output = self.output[self.sock.send(self.output):]
        except BlockingIOError:
            return
        if not self.output:
            self.close()

    def close(self):
        if self.sock is not None:
            self.sel.unregister(self.sock)
            self.sock.close()
            self.sock = None
        return True


def run_server(host, port, count):
    sel = selectors.DefaultSelector()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen()
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ, None)
    print_json({"listening": {"host": host, "port": listener.getsockname()[1]}})
    closed = 0
    try:
        while count is None or closed < count:
            for key, mask in sel.select():
                if key.data is None:
                    accept(sel, listener)
                elif key.data.on_event(mask):
                    closed += 1
    except KeyboardInterrupt:
        pass
    finally:
        sel.close()
        listener.close()
    return 0


def accept(sel, listener):
    try:
        sock, _ = listener.accept()
    except (BlockingIOError, ConnectionAbortedError):
        return
    sock.setblocking(False)
    Connection(sel, sock)


# --- command line -------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("client", help="send one request, print the reply")
    c.add_argument("host")
    c.add_argument("port", type=int)
    c.add_argument("action")
    c.add_argument("value")
    c.add_argument("--timeout", type=float, default=10.0)
    c.add_argument("--cafile", help="connect over TLS, trusting the CA certificates in FILE")
    c.add_argument("--server-hostname", default="localhost")
    s = sub.add_parser("server", help="serve the tutorial's search/binary behaviour")
    s.add_argument("host")
    s.add_argument("port", type=int)
    s.add_argument("--count", type=int, default=None, help="exit after N connections")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    try:
        if args.mode == "client" and args.cafile:
            return run_tls_client(
                args.host,
                args.port,
                args.action,
                args.value,
                args.timeout,
                args.cafile,
                args.server_hostname,
            )
        if args.mode == "client":
            return run_client(args.host, args.port, args.action, args.value, args.timeout)
        return run_server(args.host, args.port, args.count)
    except (ProtocolError, OSError, ValueError) as e:
        print(f"{args.mode}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
