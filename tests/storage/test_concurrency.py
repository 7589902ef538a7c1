"""Concurrent writes: atomic increments (in one process and across processes), compare-and-set,
unique-index races, bulk upserts and the guarded exactly-once increment of literacy cells."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from bson.int64 import Int64
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError
from pymongo.results import UpdateResult

from tests.storage.support import (
    Document,
    gather_all,
    raised,
    retry_duplicate_once,
    unexpected,
)

WORKER = Path(__file__).with_name("increment_worker.py")


async def test_inc_from_300_concurrent_coroutines_is_exact(db: AsyncDatabase[Document]) -> None:
    """Counters (article views, item statistics, cell counts) are bumped with `$inc` from many
    requests at once; the server must apply each increment atomically, losing none."""
    counters = db["counters"]
    await counters.insert_one({"_id": "views", "n": 0})

    results = await asyncio.gather(
        *(counters.update_one({"_id": "views"}, {"$inc": {"n": 1}}) for _ in range(300))
    )

    assert [r.matched_count for r in results] == [1] * 300
    assert await counters.find_one({"_id": "views"}) == {"_id": "views", "n": 300}


async def test_inc_from_4_processes_is_exact(db: AsyncDatabase[Document], mongo_url: str) -> None:
    """Production runs several app processes against one database: `$inc` must be atomic on
    the server, not read-modify-write in a connection handler (which loses updates that
    overlap across connections)."""
    counters = db["counters"]
    await counters.insert_one({"_id": "shared", "n": 0})

    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            mongo_url,
            db.name,
            counters.name,
            "shared",
            "100",  # increments per process
            "4",  # threads per process
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        # Start line: every worker has connected before any of them increments.
        ready = [await process.stdout.readline() for process in processes if process.stdout]
        outputs = await asyncio.gather(*(process.communicate(b"go\n") for process in processes))
    finally:
        for process in processes:  # only if the test failed before they finished
            if process.returncode is None:
                process.kill()
                await process.wait()

    assert ready == [b"ready\n"] * 4, [err for _, err in outputs]
    assert [p.returncode for p in processes] == [0] * 4, [err for _, err in outputs]
    assert await counters.find_one({"_id": "shared"}) == {"_id": "shared", "n": 400}


async def test_compare_and_set_has_exactly_one_winner(db: AsyncDatabase[Document]) -> None:
    """Versioned edits (question and article versions, the assessment claim, the year's first
    assessment) use a filter on the old value as a compare-and-set: among concurrent writers
    exactly one may see its update applied."""
    docs = db["docs"]
    await docs.insert_many([{"_id": "u", "version": 1}, {"_id": "f", "version": 1}])

    updates = await asyncio.gather(
        *(
            docs.update_one({"_id": "u", "version": 1}, {"$set": {"version": 2, "winner": i}})
            for i in range(50)
        )
    )
    winners = [i for i, result in enumerate(updates) if result.modified_count == 1]
    assert len(winners) == 1
    assert sum(result.matched_count for result in updates) == 1
    assert await docs.find_one({"_id": "u"}) == {"_id": "u", "version": 2, "winner": winners[0]}

    found = await asyncio.gather(
        *(
            docs.find_one_and_update(
                {"_id": "f", "version": 1}, {"$set": {"version": 2, "winner": i}}
            )
            for i in range(50)
        )
    )
    non_none = [i for i, before in enumerate(found) if before is not None]
    assert len(non_none) == 1
    assert found[non_none[0]] == {"_id": "f", "version": 1}
    assert await docs.find_one({"_id": "f"}) == {"_id": "f", "version": 2, "winner": non_none[0]}


async def test_unique_index_admits_exactly_one_of_100_concurrent_inserts(
    db: AsyncDatabase[Document],
) -> None:
    """One daily quiz per day and one contest per window are enforced by the unique `once_key`
    index alone: of 100 simultaneous submissions exactly one may be stored, and every other one
    must fail with DuplicateKeyError (which the service turns into 'already done')."""
    attempts = db["attempts"]
    await attempts.create_index("once_key", name="once_key", unique=True, sparse=True)

    outcomes = await gather_all(
        [
            attempts.insert_one({"_id": f"a{i}", "once_key": "u1:daily:2025-03-01"})
            for i in range(100)
        ]
    )

    assert unexpected(outcomes, DuplicateKeyError) == []
    assert raised(outcomes, DuplicateKeyError) == 99
    assert sum(not isinstance(outcome, BaseException) for outcome in outcomes) == 1
    assert await attempts.count_documents({}) == 1


async def test_concurrent_upserts_on_unique_field_create_one_document(
    db: AsyncDatabase[Document],
) -> None:
    """One account per WeChat openid under 20 simultaneous first logins: concurrent upserts
    on the unique `openid` index, each retried once on DuplicateKeyError, leave exactly one
    document, and exactly one login reports that it created it."""
    users = db["users"]
    await users.create_index("openid", name="openid", unique=True, sparse=True)

    def login(i: int) -> Any:
        return lambda: users.update_one(
            {"openid": "wx-openid-x"},
            {"$setOnInsert": {"openid": "wx-openid-x", "role": "resident", "first_login": i}},
            upsert=True,
        )

    results: list[UpdateResult] = await asyncio.gather(
        *(retry_duplicate_once(login(i)) for i in range(20))
    )

    assert sum(result.upserted_id is not None for result in results) == 1
    assert sum(result.matched_count for result in results) == 19
    stored = await users.find({"openid": "wx-openid-x"}).to_list()
    assert len(stored) == 1
    assert stored[0]["_id"] == next(r.upserted_id for r in results if r.upserted_id is not None)


async def test_bulk_write_of_500_upserts_then_500_increments(db: AsyncDatabase[Document]) -> None:
    """Item statistics and literacy cells are flushed as large unordered bulk upserts: one
    call must upsert every document, and a second call must match and increment all of them
    (in well under 10 s, a sanity bound: some servers stall on large bulk updates)."""
    stats = db["item_stats"]
    keys = [f"q{i:03d}|1" for i in range(500)]
    started = time.monotonic()

    inserted = await stats.bulk_write(
        [
            UpdateOne(
                {"_id": key},
                {"$inc": {"n": Int64(1)}, "$setOnInsert": {"question_id": key[:4]}},
                upsert=True,
            )
            for key in keys
        ],
        ordered=False,
    )
    assert inserted.upserted_count == 500
    assert inserted.matched_count == 0
    assert inserted.upserted_ids is not None
    assert sorted(inserted.upserted_ids.values()) == keys

    incremented = await stats.bulk_write(
        [
            UpdateOne(
                {"_id": key},
                {"$inc": {"n": Int64(i)}, "$setOnInsert": {"question_id": key[:4]}},
                upsert=True,
            )
            for i, key in enumerate(keys)
        ],
        ordered=False,
    )
    elapsed = time.monotonic() - started

    assert incremented.upserted_count == 0
    assert incremented.matched_count == 500
    assert incremented.modified_count == 499  # the first key's increment is 0
    stored = {doc["_id"]: doc async for doc in stats.find({})}
    assert len(stored) == 500
    assert all(
        stored[key] == {"_id": key, "question_id": key[:4], "n": 1 + i}
        for i, key in enumerate(keys)
    )
    assert elapsed < 10, f"two bulk writes of 500 upserts took {elapsed:.1f} s"


async def test_1000_concurrent_upserts_over_50_compound_keys(db: AsyncDatabase[Document]) -> None:
    """Literacy cells are keyed by a string `_id` "period|township|group" and created by the
    first upsert that reaches them, with `$setOnInsert` naming the key fields: 1,000 concurrent
    upserts over 50 cells (each retried once on DuplicateKeyError, as the service does) must
    leave exactly 50 cells whose counts sum to 1,000."""
    cells = db["literacy_cells"]
    keys = [("2025-03", f"t{t}", f"g{g}") for t in range(10) for g in range(5)]

    def upsert(key: tuple[str, str, str]) -> Any:
        period, township, group = key
        return lambda: cells.update_one(
            {"_id": "|".join(key)},
            {
                "$inc": {"n": Int64(1), "score_sum": Int64(70)},
                "$setOnInsert": {"period": period, "township_code": township, "group": group},
            },
            upsert=True,
        )

    results = await asyncio.gather(
        *(retry_duplicate_once(upsert(keys[i % 50])) for i in range(1000))
    )

    assert sum(r.upserted_id is not None for r in results) == 50
    stored = await cells.find({}).sort("_id", 1).to_list()
    assert len(stored) == 50
    assert sum(doc["n"] for doc in stored) == 1000
    for doc, key in zip(stored, sorted(keys, key="|".join), strict=True):
        period, township, group = key
        assert doc == {
            "_id": "|".join(key),
            "period": period,
            "township_code": township,
            "group": group,
            "n": 20,
            "score_sum": 1400,
        }


def apply_once(cell: str, attempt_id: str, *, keep: int | None = None) -> tuple[Document, Document]:
    """The guarded increment: count the attempt in the cell unless its id is already listed
    there (optionally keeping only the last `keep` ids)."""
    pushed: Any = attempt_id if keep is None else {"$each": [attempt_id], "$slice": -keep}
    return (
        {"_id": cell, "applied": {"$ne": attempt_id}},
        {"$inc": {"n": 1}, "$push": {"applied": pushed}},
    )


async def test_guarded_increment_applies_each_attempt_exactly_once(
    db: AsyncDatabase[Document],
) -> None:
    """A contribution is applied exactly once even when a retry races the original: the
    filter `applied: {$ne: id}` and the `$push` of the id are one atomic update, so 20
    concurrent applications of one attempt count once, beside 30 distinct attempts."""
    cells = db["literacy_cells"]
    await cells.insert_one({"_id": "cell", "n": 0, "applied": []})

    operations = [cells.update_one(*apply_once("cell", "repeat")) for _ in range(20)]
    operations += [cells.update_one(*apply_once("cell", f"distinct-{i}")) for i in range(30)]
    results = await asyncio.gather(*operations)

    assert sum(r.modified_count for r in results[:20]) == 1
    assert [r.modified_count for r in results[20:]] == [1] * 30
    stored = await cells.find_one({"_id": "cell"})
    assert stored is not None
    assert stored["n"] == 31
    assert len(stored["applied"]) == 31
    assert set(stored["applied"]) == {"repeat", *(f"distinct-{i}" for i in range(30))}


async def test_guarded_increment_with_slice_keeps_the_last_ids(
    db: AsyncDatabase[Document],
) -> None:
    """The list of applied ids is bounded with `$push: {$each: [id], $slice: -5}`: it keeps
    the 5 most recent ids in order, a repeat of a remembered id is refused, and one that fell
    out of the window is counted again (the window must exceed any retry's delay)."""
    cells = db["literacy_cells"]
    await cells.insert_one({"_id": "cell", "n": 0, "applied": []})

    for i in range(8):
        result = await cells.update_one(*apply_once("cell", f"a{i}", keep=5))
        assert result.modified_count == 1
    assert await cells.find_one({"_id": "cell"}) == {
        "_id": "cell",
        "n": 8,
        "applied": ["a3", "a4", "a5", "a6", "a7"],
    }

    repeats = await asyncio.gather(
        *(cells.update_one(*apply_once("cell", "a5", keep=5)) for _ in range(10))
    )
    assert [r.modified_count for r in repeats] == [0] * 10

    forgotten = await cells.update_one(*apply_once("cell", "a0", keep=5))
    assert forgotten.modified_count == 1
    assert await cells.find_one({"_id": "cell"}) == {
        "_id": "cell",
        "n": 9,
        "applied": ["a4", "a5", "a6", "a7", "a0"],
    }


async def apply_to_new_cell(db: AsyncDatabase[Document], cell: str, attempt_id: str) -> int:
    """The service's application of one attempt to a cell that may not exist yet: an ordered
    bulk of (create the cell if missing, guarded increment); if the creation lost a race to a
    concurrent one (duplicate `_id`), the ordered bulk stopped there, so the guarded increment
    is sent again on its own. Returns how many increments were applied (0 or 1)."""
    create = UpdateOne(
        {"_id": cell}, {"$setOnInsert": {"period": "2025-03", "applied": []}}, upsert=True
    )
    guarded = UpdateOne(
        {"_id": cell, "applied": {"$ne": attempt_id}},
        {"$inc": {"n": Int64(1)}, "$push": {"applied": attempt_id}},
    )
    try:
        result = await db["literacy_cells"].bulk_write([create, guarded], ordered=True)
    except BulkWriteError as error:
        codes = [e["code"] for e in error.details["writeErrors"]]
        assert codes == [11000], error.details
        assert [e["index"] for e in error.details["writeErrors"]] == [0], error.details
        result = await db["literacy_cells"].bulk_write([guarded])
    return result.modified_count


async def test_guarded_increment_on_a_cell_created_concurrently(
    db: AsyncDatabase[Document],
) -> None:
    """The first assessments of a new cell arrive together: 20 applications of one attempt
    and 30 distinct attempts, all to a cell that does not exist yet, through the ordered
    (create, guarded increment) bulk, must create one cell counting 31 attempts."""
    operations = [apply_to_new_cell(db, "2025-03|t1", "repeat") for _ in range(20)]
    operations += [apply_to_new_cell(db, "2025-03|t1", f"distinct-{i}") for i in range(30)]

    applied = await asyncio.gather(*operations)

    assert sum(applied[:20]) == 1
    assert applied[20:] == [1] * 30
    cells = await db["literacy_cells"].find({}).to_list()
    assert len(cells) == 1
    assert cells[0]["n"] == 31
    assert sorted(cells[0]["applied"]) == sorted(["repeat", *(f"distinct-{i}" for i in range(30))])
