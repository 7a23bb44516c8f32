"""BF.SCANDUMP / BF.LOADCHUNK through redis-py (Debian's python3-redis).

Usage: resp_dump.py SRC_PORT DST_PORT NAME COPY

Copies filter NAME of the node at SRC_PORT into filter COPY of the node at
DST_PORT with redis-py's scandump and loadchunk, a chunk at a time as
RedisBloom's documentation shows, then checks that COPY describes as NAME
does. Prints the bytes moved and "ok", and exits 0, when every check holds.
"""
import sys

import redis


def main():
    src_port, dst_port, name, copy = sys.argv[1:]
    src = redis.Redis(port=int(src_port))
    dst = redis.Redis(port=int(dst_port))
    it, chunks, moved = 0, 0, 0
    while True:
        it, data = src.bf().scandump(name, it)
        if it == 0:
            break
        dst.bf().loadchunk(copy, it, data)
        chunks += 1
        moved += len(data)
    a, b = src.bf().info(name), dst.bf().info(copy)
    assert (a.capacity, a.size, a.filterNum, a.expansionRate) == (b.capacity, b.size, b.filterNum, b.expansionRate), (vars(a), vars(b))
    try:
        dst.bf().loadchunk(copy, 1, b"RMBC not a chunk")
        raise AssertionError("a bad chunk loaded")
    except redis.ResponseError as e:
        assert "not a valid dump chunk" in str(e), str(e)
    print("%d chunks, %d bytes" % (chunks, moved))
    print("ok")


if __name__ == "__main__":
    main()
