"""Query operators, find options (sort, skip, limit, projection), count_documents and
distinct, each with the exact documents that must come back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from tests.storage.support import Document

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


async def collection_of(
    db: AsyncDatabase[Document], docs: list[Document]
) -> AsyncCollection[Document]:
    collection = db["docs"]
    await collection.insert_many(docs)
    return collection


async def ids(collection: AsyncCollection[Document], query: Document) -> list[object]:
    """The `_id`s matching a query, sorted."""
    return sorted([doc["_id"] async for doc in collection.find(query, {"_id": 1})])


async def test_in_and_nin(db: AsyncDatabase[Document]) -> None:
    """Questions are listed by a set of allowed statuses (`$in`), cells read for a set of
    periods; `$nin` excludes a set and matches documents missing the field."""
    docs = await collection_of(
        db,
        [
            {"_id": 1, "status": "draft"},
            {"_id": 2, "status": "published"},
            {"_id": 3, "status": "retired"},
            {"_id": 4},
        ],
    )

    assert await ids(docs, {"status": {"$in": ["draft", "published"]}}) == [1, 2]
    assert await ids(docs, {"status": {"$in": []}}) == []
    assert await ids(docs, {"status": {"$nin": ["draft", "published"]}}) == [3, 4]


async def test_ne_null_excludes_null_and_missing(db: AsyncDatabase[Document]) -> None:
    """Leaderboards count attempts with `user_id: {$ne: null}`: anonymised attempts (user_id
    set to null) and documents without the field must both be left out; `$ne` on a value
    keeps documents missing the field."""
    docs = await collection_of(
        db,
        [
            {"_id": 1, "user_id": "u1"},
            {"_id": 2, "user_id": None},
            {"_id": 3},
            {"_id": 4, "user_id": "u2"},
        ],
    )

    assert await ids(docs, {"user_id": {"$ne": None}}) == [1, 4]
    assert await ids(docs, {"user_id": None}) == [2, 3]
    assert await ids(docs, {"user_id": {"$ne": "u1"}}) == [2, 3, 4]


async def test_range_operators_on_numbers_and_datetimes(db: AsyncDatabase[Document]) -> None:
    """Changed-since feeds use `$gte` on datetimes and the catch-up of uncounted assessments
    `$lt`; datetimes come back timezone-aware in UTC and compare exactly to the millisecond."""
    docs = await collection_of(
        db, [{"_id": i, "n": i, "at": T0 + timedelta(milliseconds=i)} for i in range(6)]
    )

    assert await ids(docs, {"n": {"$gt": 2}}) == [3, 4, 5]
    assert await ids(docs, {"n": {"$gte": 2, "$lt": 4}}) == [2, 3]
    assert await ids(docs, {"n": {"$lte": 1}}) == [0, 1]
    assert await ids(docs, {"at": {"$gte": T0 + timedelta(milliseconds=4)}}) == [4, 5]
    assert await ids(docs, {"at": {"$lt": T0 + timedelta(milliseconds=1)}}) == [0]
    first = await docs.find_one({"_id": 0})
    assert first is not None
    assert first["at"] == T0
    assert first["at"].tzinfo is not None
    assert first["at"].utcoffset() == timedelta(0)


async def test_exists(db: AsyncDatabase[Document]) -> None:
    """`$exists` tells documents with a field (even null) from those without it."""
    docs = await collection_of(db, [{"_id": 1, "x": 0}, {"_id": 2, "x": None}, {"_id": 3}])

    assert await ids(docs, {"x": {"$exists": True}}) == [1, 2]
    assert await ids(docs, {"x": {"$exists": False}}) == [3]


async def test_regex(db: AsyncDatabase[Document]) -> None:
    """Anchored and case-insensitive regular expressions, also on Chinese text."""
    docs = await collection_of(
        db,
        [
            {"_id": 1, "name": "Chen"},
            {"_id": 2, "name": "chenxi"},
            {"_id": 3, "name": "li"},
            {"_id": 4, "name": "鹿寨县科协"},
        ],
    )

    assert await ids(docs, {"name": {"$regex": "^chen"}}) == [2]
    assert await ids(docs, {"name": {"$regex": "^chen", "$options": "i"}}) == [1, 2]
    assert await ids(docs, {"name": {"$regex": "科协$"}}) == [4]


async def test_or_and_and(db: AsyncDatabase[Document]) -> None:
    """`$or` and `$and`, also nested, and combined with plain fields."""
    docs = await collection_of(
        db,
        [
            {"_id": 1, "a": 1, "b": 1},
            {"_id": 2, "a": 1, "b": 2},
            {"_id": 3, "a": 2, "b": 1},
            {"_id": 4, "a": 3, "b": 3},
        ],
    )

    assert await ids(docs, {"$or": [{"a": 2}, {"b": 2}]}) == [2, 3]
    assert await ids(docs, {"$and": [{"a": 1}, {"b": {"$gt": 1}}]}) == [2]
    assert await ids(docs, {"a": {"$lt": 3}, "$or": [{"b": 1}, {"a": 1}]}) == [1, 2, 3]
    assert await ids(
        docs, {"$and": [{"$or": [{"a": 1}, {"a": 3}]}, {"$or": [{"b": 2}, {"b": 3}]}]}
    ) == [2, 4]


async def test_elem_match_and_array_equality(db: AsyncDatabase[Document]) -> None:
    """`$elemMatch` requires one array element to satisfy every condition (two conditions on
    a plain dotted path may be met by different elements); a scalar matches array members."""
    docs = await collection_of(
        db,
        [
            {"_id": 1, "items": [{"qid": "q1", "ok": True}, {"qid": "q2", "ok": False}]},
            {"_id": 2, "items": [{"qid": "q2", "ok": True}]},
            {"_id": 3, "tags": ["a", "b"]},
        ],
    )

    assert await ids(docs, {"items": {"$elemMatch": {"qid": "q2", "ok": True}}}) == [2]
    assert await ids(docs, {"items.qid": "q2", "items.ok": True}) == [1, 2]
    assert await ids(docs, {"tags": "b"}) == [3]


async def test_dotted_queries_into_nested_documents(db: AsyncDatabase[Document]) -> None:
    """Leaderboards filter attempts on `periods.<period>` and `profile.township_code`."""
    docs = await collection_of(
        db,
        [
            {
                "_id": 1,
                "periods": {"week": "2025-W09", "month": "2025-03"},
                "profile": {"township_code": "t1"},
            },
            {
                "_id": 2,
                "periods": {"week": "2025-W10", "month": "2025-03"},
                "profile": {"township_code": "t2"},
            },
            {"_id": 3, "periods": {"week": "2025-W10", "month": "2025-03"}, "profile": {}},
        ],
    )

    assert await ids(docs, {"periods.week": "2025-W10"}) == [2, 3]
    assert await ids(docs, {"periods.month": "2025-03", "profile.township_code": "t1"}) == [1]
    assert await ids(docs, {"profile.township_code": {"$exists": False}}) == [3]


async def test_sort_skip_limit(db: AsyncDatabase[Document]) -> None:
    """Paged lists sort by `changed_at` descending with `_id` descending as the tie-break,
    then skip and limit; the pages must be exact and disjoint."""
    docs = await collection_of(
        db, [{"_id": i, "changed_at": T0 + timedelta(minutes=i // 2)} for i in range(10)]
    )

    async def page(skip: int, limit: int) -> list[object]:
        cursor = docs.find({}).sort([("changed_at", DESCENDING), ("_id", DESCENDING)])
        return [doc["_id"] async for doc in cursor.skip(skip).limit(limit)]

    assert await page(0, 4) == [9, 8, 7, 6]
    assert await page(4, 4) == [5, 4, 3, 2]
    assert await page(8, 4) == [1, 0]
    assert await page(12, 4) == []
    ascending = await docs.find({"_id": {"$gte": 5}}).sort("_id", ASCENDING).limit(2).to_list()
    assert [d["_id"] for d in ascending] == [5, 6]


async def test_projections(db: AsyncDatabase[Document]) -> None:
    """Reading a cell without its large `applied` array (`{"applied": 0}`), listing townships
    with `{"_id": 0, "code": 1, "name": 1}`, and inclusion of nested fields by dotted name."""
    docs = await collection_of(
        db,
        [
            {
                "_id": "cell",
                "n": 3,
                "applied": [f"attempt-{i:05d}" for i in range(10_000)],
                "dims": {"science": 1, "health": 2},
            },
            {"_id": "t", "code": "450223100", "name": "鹿寨镇", "extra": True},
        ],
    )

    assert await docs.find_one({"_id": "cell"}, {"applied": 0}) == {
        "_id": "cell",
        "n": 3,
        "dims": {"science": 1, "health": 2},
    }
    assert await docs.find_one({"_id": "t"}, {"_id": 0, "code": 1, "name": 1}) == {
        "code": "450223100",
        "name": "鹿寨镇",
    }
    assert await docs.find_one({"_id": "cell"}, {"dims.health": 1, "n": 1}) == {
        "_id": "cell",
        "n": 3,
        "dims": {"health": 2},
    }
    assert await docs.find({}, {"_id": 1}).sort("_id", ASCENDING).to_list() == [
        {"_id": "cell"},
        {"_id": "t"},
    ]


async def test_count_documents(db: AsyncDatabase[Document]) -> None:
    """Paged lists report the total with `count_documents(query)`; existence checks use
    `count_documents(query, limit=1)`."""
    docs = await collection_of(db, [{"_id": i, "even": i % 2 == 0} for i in range(25)])

    assert await docs.count_documents({}) == 25
    assert await docs.count_documents({"even": True}) == 13
    assert await docs.count_documents({"even": True}, limit=1) == 1
    assert await docs.count_documents({"even": True}, skip=10) == 3
    assert await docs.count_documents({"_id": {"$gt": 100}}, limit=1) == 0
    assert await db["absent"].count_documents({}) == 0


async def test_distinct(db: AsyncDatabase[Document]) -> None:
    """`distinct` returns each value once, array members one by one, nested values by dotted
    name, and honours a filter."""
    docs = await collection_of(
        db,
        [
            {"_id": 1, "t": "a", "tags": ["x", "y"], "p": {"g": 1}},
            {"_id": 2, "t": "b", "tags": ["y", "z"], "p": {"g": 1}},
            {"_id": 3, "t": "a", "p": {"g": 2}},
        ],
    )

    assert sorted(await docs.distinct("t")) == ["a", "b"]
    assert sorted(await docs.distinct("tags")) == ["x", "y", "z"]
    assert sorted(await docs.distinct("p.g")) == [1, 2]
    assert await docs.distinct("t", {"p.g": 2}) == ["a"]
