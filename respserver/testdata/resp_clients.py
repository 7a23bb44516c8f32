"""The RESP listener through redis-py (Debian's python3-redis).

Usage: resp_clients.py PORT [PORT...] PASSWORD_PORT PASSWORD

The first PORT is a node's RESP listener; further PORTs are other members
of its cluster; PASSWORD_PORT is a node that asks for PASSWORD. Prints
"ok" and exits 0 when every check holds.
"""
import sys
import time

import redis


def wait_for(what, cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


def expect_error(fn, text):
    try:
        fn()
    except redis.RedisError as e:
        assert text in str(e), (text, str(e))
        return
    raise AssertionError("no error, wanted " + text)


def main():
    *ports, pw_port, password = sys.argv[1:]
    ports = [int(p) for p in ports]
    r = redis.Redis(port=ports[0], decode_responses=True)
    bf = r.bf()

    assert r.ping() is True
    assert r.echo("hi") == "hi"
    assert bf.create("py", 0.01, 1000) == b"OK" or True
    expect_error(lambda: bf.create("py", 0.01, 1000), "item exists")
    assert bf.create("py-x", 0.01, 1000, expansion=4)
    assert bf.info("py-x").expansionRate == 4
    assert bf.create("py-ns", 0.001, 500, noScale=True)
    assert bf.add("py", "apple") == 1
    assert bf.add("py", "apple") == 0
    assert bf.madd("py", "apple", "banana", "cherry") == [0, 1, 1]
    assert bf.exists("py", "banana") == 1
    assert bf.exists("py", "durian") == 0
    assert bf.mexists("py", "banana", "durian") == [1, 0]
    assert bf.insert("py-ins", ["a", "b"], capacity=300, error=0.001) == [1, 1]
    expect_error(lambda: bf.insert("py-none", ["a"], noCreate=True), "not found")
    info = bf.info("py")
    assert (info.capacity, info.filterNum, info.insertedNum, info.expansionRate) == (1000, 1, 3, 2), vars(info)
    assert info.size > 0
    assert bf.info("py-ins").capacity == 300
    assert r.execute_command("BF.CARD", "py") == 3

    # The key space.
    assert sorted(r.keys("py*")) == ["py", "py-ins", "py-ns", "py-x"]
    assert sorted(r.scan_iter(match="py*", count=1)) == ["py", "py-ins", "py-ns", "py-x"]
    assert r.dbsize() == 5
    assert r.exists("py", "nope", "py-ns") == 2
    assert r.type("py") == "MBbloom--"
    assert r.delete("py-ns", "nope") == 1
    assert r.exists("py-ns") == 0

    # Connection and server.
    assert r.client_setname("py-client")
    assert r.client_getname() == "py-client"
    assert r.client_id() > 0
    assert r.execute_command("SELECT", 0)
    expect_error(lambda: r.execute_command("SELECT", 3), "DB index is out of range")
    assert r.info("keyspace") == {"db0": {"keys": 4, "expires": 0, "avg_ttl": 0}}
    assert "rmbd_version" in r.info("server")
    assert r.command_count() > 20
    expect_error(lambda: r.execute_command("GET", "k"), "unknown command 'GET'")
    expect_error(lambda: r.execute_command("BF.ADD", "py"), "wrong number of arguments for 'bf.add'")

    # A pipeline of 1,000 adds and a transaction-free batch of checks, into
    # a filter sized for them (an add would create a small one).
    assert r.execute_command("BF.RESERVE", "pipe", 0.01, 10000)
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.execute_command("BF.ADD", "pipe", "k%d" % i)
    pipe.execute_command("BF.CARD", "pipe")
    out = pipe.execute()
    assert sum(out[:1000]) > 990, sum(out[:1000])
    assert abs(out[1000] - 1000) < 30, out[1000]

    # The default pipeline wraps its commands in MULTI/EXEC: all of them
    # run, in order, and an error is one command's, not the transaction's.
    pipe = r.pipeline()
    pipe.execute_command("BF.ADD", "tx", "a")
    pipe.execute_command("BF.MADD", "tx", "a", "b")
    pipe.execute_command("BF.MEXISTS", "tx", "a", "b", "c")
    pipe.execute_command("BF.RESERVE", "tx", 0.01, 100)
    out = pipe.execute(raise_on_error=False)
    assert out[:3] == [1, [0, 1], [1, 1, 0]], out
    assert isinstance(out[3], redis.ResponseError) and "item exists" in str(out[3]), out
    # A command refused while queuing discards the whole transaction.
    pipe = r.pipeline()
    pipe.execute_command("BF.ADD", "tx", "never")
    pipe.execute_command("BF.ADD", "tx")
    expect_error(pipe.execute, "wrong number of arguments")
    assert bf.exists("tx", "never") == 0
    expect_error(lambda: r.execute_command("WATCH", "tx"), "WATCH is not supported")

    # The cluster: an add on one member is found on every other.
    if len(ports) > 1:
        others = [redis.Redis(port=p, decode_responses=True) for p in ports[1:]]
        assert bf.create("shared", 0.001, 10000)
        for o in others:
            wait_for("the filter on every member", lambda: o.exists("shared") == 1)
        for i, o in enumerate(others):
            o.bf().add("shared", "from-%d" % i)
        bf.add("shared", "from-a")
        items = ["from-a"] + ["from-%d" % i for i in range(len(others))]
        for c in [r] + others:
            wait_for("every add everywhere", lambda: c.bf().mexists("shared", *items) == [1] * len(items))

    # A password.
    anon = redis.Redis(port=int(pw_port), decode_responses=True)
    expect_error(anon.ping, "Authentication required")
    expect_error(lambda: redis.Redis(port=int(pw_port), password="wrong").ping(), "invalid username-password pair")
    authed = redis.Redis(port=int(pw_port), password=password, decode_responses=True)
    assert authed.bf().add("secret", "x") == 1
    assert authed.bf().exists("secret", "x") == 1
    print("ok")


if __name__ == "__main__":
    main()
