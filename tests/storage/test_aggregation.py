"""Aggregation stages and expressions, one small pipeline each with its exact output.

The first three are the service's own pipelines (leaderboard points, participants by
township, respondents by period); the others are the stages and operators that reports and
exports may use, pinned down so that the embedded server and MongoDB agree on them."""

from __future__ import annotations

from datetime import UTC, datetime

from bson.int64 import Int64
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from tests.storage.support import Document


async def collection_of(
    db: AsyncDatabase[Document], docs: list[Document], name: str = "docs"
) -> AsyncCollection[Document]:
    collection = db[name]
    await collection.insert_many(docs)
    return collection


async def run(collection: AsyncCollection[Document], pipeline: list[Document]) -> list[Document]:
    return await (await collection.aggregate(pipeline)).to_list()


def by_id(rows: list[Document]) -> list[Document]:
    """Group output in a fixed order (`$group` promises none)."""
    return sorted(rows, key=lambda row: repr(row["_id"]))


ATTEMPTS: list[Document] = [
    {"_id": 1, "user_id": "u1", "points": 10, "week": "W1", "profile": {"township_code": "t1"}},
    {"_id": 2, "user_id": "u1", "points": 5, "week": "W2", "profile": {"township_code": "t1"}},
    {"_id": 3, "user_id": "u2", "points": 7, "week": "W1", "profile": {"township_code": "t1"}},
    {"_id": 4, "user_id": "u3", "points": 3, "week": "W1", "profile": {"township_code": "t2"}},
    {"_id": 5, "user_id": None, "points": 100, "week": "W1", "profile": {"township_code": "t2"}},
    {"_id": 6, "user_id": "u3", "points": 1, "week": "W1", "profile": {"township_code": "t2"}},
]


async def test_match_then_group_sum_of_field(db: AsyncDatabase[Document]) -> None:
    """Leaderboard rebuild: `$match` (user_id not null, one period) then `$group` by user with
    `$sum` of points. An anonymised attempt must not count."""
    attempts = await collection_of(db, ATTEMPTS)

    rows = await run(
        attempts,
        [
            {"$match": {"user_id": {"$ne": None}, "week": "W1"}},
            {"$group": {"_id": "$user_id", "points": {"$sum": "$points"}}},
        ],
    )

    assert by_id(rows) == [
        {"_id": "u1", "points": 10},
        {"_id": "u2", "points": 7},
        {"_id": "u3", "points": 4},
    ]


async def test_group_on_compound_id_then_regroup(db: AsyncDatabase[Document]) -> None:
    """Participants by township: group on a compound `_id` {t, u} (distinct residents), then
    group again on `$_id.t` counting with `$sum: 1`."""
    attempts = await collection_of(db, ATTEMPTS)

    rows = await run(
        attempts,
        [
            {"$match": {"user_id": {"$ne": None}}},
            {"$group": {"_id": {"t": "$profile.township_code", "u": "$user_id"}}},
            {"$group": {"_id": "$_id.t", "participants": {"$sum": 1}}},
        ],
    )

    assert by_id(rows) == [{"_id": "t1", "participants": 2}, {"_id": "t2", "participants": 1}]


async def test_group_sum_of_int64_counts(db: AsyncDatabase[Document]) -> None:
    """Respondents by period: `$sum` of Int64 cell counts, exact past 2^31."""
    cells = await collection_of(
        db,
        [
            {"_id": "a", "period": "2025", "n": Int64(2**31)},
            {"_id": "b", "period": "2025", "n": Int64(2**31)},
            {"_id": "c", "period": "2025-03", "n": Int64(7)},
        ],
    )

    rows = await run(cells, [{"$group": {"_id": "$period", "respondents": {"$sum": "$n"}}}])

    assert by_id(rows) == [
        {"_id": "2025", "respondents": 2**32},
        {"_id": "2025-03", "respondents": 7},
    ]


async def test_group_accumulators(db: AsyncDatabase[Document]) -> None:
    """`$max`, `$min`, `$avg`, `$first` (after `$sort`), `$push` and `$addToSet` per group,
    and a `_id: null` group over everything."""
    attempts = await collection_of(db, ATTEMPTS)

    rows = await run(
        attempts,
        [
            {"$match": {"user_id": {"$ne": None}}},
            {"$sort": {"_id": 1}},
            {
                "$group": {
                    "_id": "$profile.township_code",
                    "best": {"$max": "$points"},
                    "worst": {"$min": "$points"},
                    "mean": {"$avg": "$points"},
                    "first": {"$first": "$user_id"},
                    "all": {"$push": "$points"},
                    "users": {"$addToSet": "$user_id"},
                }
            },
        ],
    )
    total = await run(attempts, [{"$group": {"_id": None, "points": {"$sum": "$points"}}}])

    for row in rows:
        row["users"] = sorted(row["users"])
    assert by_id(rows) == [
        {
            "_id": "t1",
            "best": 10,
            "worst": 5,
            "mean": 22 / 3,
            "first": "u1",
            "all": [10, 5, 7],
            "users": ["u1", "u2"],
        },
        {
            "_id": "t2",
            "best": 3,
            "worst": 1,
            "mean": 2.0,
            "first": "u3",
            "all": [3, 1],
            "users": ["u3"],
        },
    ]
    assert total == [{"_id": None, "points": 126}]


async def test_sort_skip_limit_stages(db: AsyncDatabase[Document]) -> None:
    """`$sort` on two keys (descending, then ascending tie-break), `$skip`, `$limit`."""
    attempts = await collection_of(db, ATTEMPTS)

    rows = await run(
        attempts,
        [
            {"$sort": {"week": -1, "points": 1}},
            {"$skip": 1},
            {"$limit": 3},
            {"$project": {"_id": 1}},
        ],
    )

    assert rows == [{"_id": 6}, {"_id": 4}, {"_id": 3}]


async def test_project_inclusion_exclusion_and_computed(db: AsyncDatabase[Document]) -> None:
    """`$project` including, renaming (a field path), computing and excluding fields."""
    attempts = await collection_of(db, ATTEMPTS[:2])

    shaped = await run(
        attempts,
        [
            {"$sort": {"_id": 1}},
            {
                "$project": {
                    "_id": 0,
                    "user_id": 1,
                    "township": "$profile.township_code",
                    "double": {"$multiply": ["$points", 2]},
                }
            },
        ],
    )
    trimmed = await run(attempts, [{"$match": {"_id": 1}}, {"$project": {"profile": 0, "week": 0}}])

    assert shaped == [
        {"user_id": "u1", "township": "t1", "double": 20},
        {"user_id": "u1", "township": "t1", "double": 10},
    ]
    assert trimmed == [{"_id": 1, "user_id": "u1", "points": 10}]


async def test_add_fields(db: AsyncDatabase[Document]) -> None:
    """`$addFields` keeps every field and adds computed ones."""
    attempts = await collection_of(db, ATTEMPTS[:1])

    rows = await run(attempts, [{"$addFields": {"bonus": {"$add": ["$points", 1]}}}])

    assert rows == [{**ATTEMPTS[0], "bonus": 11}]


async def test_count(db: AsyncDatabase[Document]) -> None:
    """`$count` names a field with the number of documents reaching it (and yields no
    document at all when none do)."""
    attempts = await collection_of(db, ATTEMPTS)

    assert await run(attempts, [{"$match": {"week": "W1"}}, {"$count": "n"}]) == [{"n": 5}]
    assert await run(attempts, [{"$match": {"week": "W9"}}, {"$count": "n"}]) == []


async def test_facet(db: AsyncDatabase[Document]) -> None:
    """`$facet` runs sub-pipelines over the same input: one page and the total in one call."""
    attempts = await collection_of(db, ATTEMPTS)

    rows = await run(
        attempts,
        [
            {"$match": {"user_id": {"$ne": None}}},
            {
                "$facet": {
                    "page": [{"$sort": {"points": -1}}, {"$limit": 2}, {"$project": {"_id": 1}}],
                    "total": [{"$count": "n"}],
                }
            },
        ],
    )

    assert rows == [{"page": [{"_id": 1}, {"_id": 3}], "total": [{"n": 5}]}]


async def test_unwind(db: AsyncDatabase[Document]) -> None:
    """`$unwind` yields one document per array element (dropping empty or missing arrays
    unless `preserveNullAndEmptyArrays`), here counting answers per question."""
    responses = await collection_of(
        db,
        [
            {"_id": 1, "answers": [{"qid": "q1", "ok": True}, {"qid": "q2", "ok": False}]},
            {"_id": 2, "answers": [{"qid": "q1", "ok": False}]},
            {"_id": 3, "answers": []},
            {"_id": 4},
        ],
    )

    per_question = await run(
        responses,
        [
            {"$unwind": "$answers"},
            {"$group": {"_id": "$answers.qid", "n": {"$sum": 1}}},
        ],
    )
    kept = await run(
        responses,
        [
            {"$unwind": {"path": "$answers", "preserveNullAndEmptyArrays": True}},
            {"$project": {"_id": 1}},
        ],
    )

    assert by_id(per_question) == [{"_id": "q1", "n": 2}, {"_id": "q2", "n": 1}]
    assert sorted(row["_id"] for row in kept) == [1, 1, 2, 3, 4]


async def test_cond(db: AsyncDatabase[Document]) -> None:
    """`$cond` inside `$sum`: counting correct answers per question (a share of correct)."""
    answers = await collection_of(
        db,
        [
            {"_id": 1, "qid": "q1", "ok": True},
            {"_id": 2, "qid": "q1", "ok": False},
            {"_id": 3, "qid": "q1", "ok": True},
            {"_id": 4, "qid": "q2", "ok": False},
        ],
    )

    rows = await run(
        answers,
        [
            {
                "$group": {
                    "_id": "$qid",
                    "correct": {"$sum": {"$cond": ["$ok", 1, 0]}},
                    "wrong": {"$sum": {"$cond": {"if": "$ok", "then": 0, "else": 1}}},
                }
            }
        ],
    )

    assert by_id(rows) == [
        {"_id": "q1", "correct": 2, "wrong": 1},
        {"_id": "q2", "correct": 0, "wrong": 1},
    ]


async def test_date_to_string(db: AsyncDatabase[Document]) -> None:
    """`$dateToString` formats UTC datetimes (default timezone) and in Asia/Shanghai (the
    county's day boundary), here grouping submissions by local day."""
    attempts = await collection_of(
        db,
        [
            {"_id": 1, "at": datetime(2025, 3, 1, 15, 30, tzinfo=UTC)},  # 23:30 in Shanghai
            {"_id": 2, "at": datetime(2025, 3, 1, 16, 30, tzinfo=UTC)},  # 00:30 next day
            {"_id": 3, "at": datetime(2025, 3, 1, 17, 0, tzinfo=UTC)},
        ],
    )

    utc_days = await run(
        attempts,
        [
            {"$project": {"day": {"$dateToString": {"format": "%Y-%m-%d", "date": "$at"}}}},
            {"$sort": {"_id": 1}},
        ],
    )
    local = await run(
        attempts,
        [
            {
                "$group": {
                    "_id": {
                        "$dateToString": {
                            "format": "%Y-%m-%d",
                            "date": "$at",
                            "timezone": "Asia/Shanghai",
                        }
                    },
                    "n": {"$sum": 1},
                }
            }
        ],
    )
    stamped = await run(
        attempts,
        [
            {"$match": {"_id": 1}},
            {"$project": {"_id": 0, "s": {"$dateToString": {"format": "%H:%M:%S", "date": "$at"}}}},
        ],
    )

    assert [row["day"] for row in utc_days] == ["2025-03-01"] * 3
    assert by_id(local) == [{"_id": "2025-03-01", "n": 1}, {"_id": "2025-03-02", "n": 2}]
    assert stamped == [{"s": "15:30:00"}]


async def test_lookup(db: AsyncDatabase[Document]) -> None:
    """`$lookup` joins township names onto attempts by code (an empty array when none)."""
    await collection_of(db, [{"_id": "t1", "name": "鹿寨镇"}], name="townships")
    attempts = await collection_of(
        db, [{"_id": 1, "t": "t1"}, {"_id": 2, "t": "t9"}], name="attempts"
    )

    rows = await run(
        attempts,
        [
            {
                "$lookup": {
                    "from": "townships",
                    "localField": "t",
                    "foreignField": "_id",
                    "as": "town",
                }
            },
            {"$sort": {"_id": 1}},
        ],
    )

    assert rows == [
        {"_id": 1, "t": "t1", "town": [{"_id": "t1", "name": "鹿寨镇"}]},
        {"_id": 2, "t": "t9", "town": []},
    ]
