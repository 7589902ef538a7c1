"""A separate OS process for the cross-process `$inc` test: sync PyMongo, a few threads, each
incrementing one counter document. Run as `python increment_worker.py URL DB COLLECTION
DOC_ID INCREMENTS THREADS`: it connects, prints "ready", waits for a line on standard input
(so that all workers start incrementing together), and exits 0 when every increment was
acknowledged with a match."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pymongo import MongoClient


def main(argv: list[str]) -> int:
    url, db_name, collection_name, doc_id = argv[:4]
    increments, threads = int(argv[4]), int(argv[5])
    client: MongoClient[dict[str, Any]] = MongoClient(url, serverSelectionTimeoutMS=15_000)
    with client:
        collection = client[db_name][collection_name]
        client.admin.command("ping")
        print("ready", flush=True)
        sys.stdin.readline()

        def increment(_: int) -> int:
            return collection.update_one({"_id": doc_id}, {"$inc": {"n": 1}}).matched_count

        with ThreadPoolExecutor(threads) as pool:
            matched = sum(pool.map(increment, range(increments)))
    if matched != increments:
        print(f"only {matched} of {increments} increments matched", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
