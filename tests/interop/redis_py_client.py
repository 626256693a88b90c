#!/usr/bin/env python3
"""Python's `redis` package (redis-py) against a Redis-compatible server, as a Python
program uses it. Run by tests/kv_server_clients.rs:

    redis_py_client.py SCENARIO HOST PORT

SCENARIO is `pipeline` (one round trip for many commands, transaction=False), `pubsub`
(subscribe, a message published from a second client, get_message with a timeout) or
`psubscribe` (pattern subscriptions next to a channel subscription). Each prints what it
checked and `SCENARIO ok`; any difference from what Redis answers raises (exit status 1).
"""

import sys
import time

import redis

# RESP2: the protocol kv_server speaks (redis-py may default to RESP3 some day).
PROTOCOL = 2
# Every wait is bounded: the test's own bound is 10 s.
WAIT = 5.0


def client(host, port):
    return redis.Redis(host=host, port=port, protocol=PROTOCOL, socket_timeout=WAIT)


def pipeline(host, port):
    r = client(host, port)
    pipe = r.pipeline(transaction=False)
    for i in range(100):
        pipe.set(f"key:{i}", f"value:{i}")
    for i in range(100):
        pipe.incr("counter")
    pipe.incrby("counter", 50)
    pipe.get("key:42")
    pipe.set("key:0", "new", nx=True)
    pipe.set("key:0", "newer", xx=True, get=True)
    pipe.expire("key:1", 100)
    pipe.ttl("key:1")
    pipe.delete("key:2", "key:3", "missing")
    pipe.exists("key:2", "key:4")
    pipe.dbsize()
    replies = pipe.execute()
    assert replies[:100] == [True] * 100, replies[:100]
    assert replies[100:200] == list(range(1, 101)), replies[100:200]
    expected = [150, b"value:42", None, b"value:0", True, 100, 2, 1, 99]
    assert replies[200:] == expected, (replies[200:], expected)
    print(f"pipeline: {len(replies)} replies in one round trip")

    # A pipeline whose middle command fails: the error comes back in its place and the
    # other commands still run (raise_on_error=False).
    pipe = r.pipeline(transaction=False)
    pipe.set("text", "abc")
    pipe.incr("text")
    pipe.get("text")
    replies = pipe.execute(raise_on_error=False)
    assert replies[0] is True and replies[2] == b"abc", replies
    assert isinstance(replies[1], redis.ResponseError), replies
    assert str(replies[1]) == "value is not an integer or out of range", replies
    print("pipeline: an error in the middle comes back in its place")
    r.close()


def next_message(pubsub):
    """The next message, within WAIT, subscription confirmations included."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=deadline - time.monotonic())
        if message is not None:
            return message
    raise AssertionError("no message within the wait")


def pubsub(host, port):
    subscriber = client(host, port)
    publisher = client(host, port)
    p = subscriber.pubsub()
    p.subscribe("news", "sport")
    assert next_message(p) == {"type": "subscribe", "pattern": None, "channel": b"news", "data": 1}
    assert next_message(p) == {"type": "subscribe", "pattern": None, "channel": b"sport", "data": 2}
    # Nothing published yet: get_message times out with None.
    assert p.get_message(timeout=0.1) is None
    assert publisher.publish("news", "hello") == 1
    assert publisher.publish("nobody", "lost") == 0
    message = next_message(p)
    assert message == {"type": "message", "pattern": None, "channel": b"news", "data": b"hello"}, message
    print("pubsub: a message published by another client arrived")
    p.unsubscribe("news")
    assert next_message(p)["data"] == 1
    assert publisher.publish("news", "after") == 0
    assert publisher.publish("sport", "goal") == 1
    message = next_message(p)
    assert message["channel"] == b"sport" and message["data"] == b"goal", message
    p.ping()
    message = next_message(p)
    assert message["type"] == "pong", message
    p.close()
    print("pubsub: unsubscribe, ping, close")
    publisher.close()
    subscriber.close()


def psubscribe(host, port):
    subscriber = client(host, port)
    publisher = client(host, port)
    p = subscriber.pubsub()
    p.psubscribe("news.*", "h?llo")
    p.subscribe("news.tech")
    counts = [next_message(p)["data"] for _ in range(3)]
    assert counts == [1, 2, 3], counts
    assert publisher.publish("news.tech", "rust") == 2
    assert publisher.publish("hallo", "hi") == 1
    assert publisher.publish("hello.world", "no") == 0
    got = [next_message(p) for _ in range(3)]
    kinds = sorted((m["type"], m["pattern"], m["channel"], m["data"]) for m in got)
    assert kinds == [
        ("message", None, b"news.tech", b"rust"),
        ("pmessage", b"h?llo", b"hallo", b"hi"),
        ("pmessage", b"news.*", b"news.tech", b"rust"),
    ], kinds
    print("psubscribe: messages matched by pattern and by channel")
    p.punsubscribe()
    unsubscribed = sorted(next_message(p)["channel"] for _ in range(2))
    assert unsubscribed == [b"h?llo", b"news.*"], unsubscribed
    assert publisher.publish("news.art", "x") == 0
    p.close()
    publisher.close()
    subscriber.close()


SCENARIOS = {"pipeline": pipeline, "pubsub": pubsub, "psubscribe": psubscribe}

if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in SCENARIOS:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(SCENARIOS)} HOST PORT")
    scenario = sys.argv[1]
    SCENARIOS[scenario](sys.argv[2], int(sys.argv[3]))
    print(f"{scenario} ok")
