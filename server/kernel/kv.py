"""Redis with this deployment's key prefix. Storage modules build every key through `key()`
so tests (and deployments sharing a server) never see each other's keys."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis, RedisCluster

# One Redis server, or a Redis Cluster (REDIS_CLUSTER=true). Storage modules use commands
# both accept; a command touching several keys (MGET, DEL of many, a transaction, a script)
# must keep them in one slot, i.e. in one `tagged` group, to run on a cluster.
RedisClient = Redis | RedisCluster


@dataclass(frozen=True)
class Kv:
    redis: RedisClient
    prefix: str

    def key(self, *parts: str | int) -> str:
        return self.prefix + ":".join(str(part) for part in parts)

    def tagged(self, group: str, *parts: str | int) -> str:
        """A key in a hash-tag group: keys of one group (say, one resident's state, or the
        county's leaderboards) land on the same Redis Cluster slot, so one script, transaction
        or MGET may touch several of them. The prefix is inside the tag, so two deployments
        sharing a cluster spread over different slots."""
        return "{" + self.prefix + group + "}:" + ":".join(str(part) for part in parts)


def text(value: bytes | str) -> str:
    """A Redis reply as text (the client returns bytes; its type hints allow str)."""
    return value.decode() if isinstance(value, bytes) else value
