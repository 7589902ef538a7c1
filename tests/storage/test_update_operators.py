"""Update operators and write commands, one behaviour per test, with the exact document that
must result."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bson.int64 import Int64
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from tests.storage.support import Document


async def seeded(db: AsyncDatabase[Document], doc: Document) -> AsyncCollection[Document]:
    collection = db["docs"]
    await collection.insert_one(doc)
    return collection


async def stored(collection: AsyncCollection[Document], doc_id: object = 1) -> Document | None:
    return await collection.find_one({"_id": doc_id})


async def test_set_and_unset(db: AsyncDatabase[Document]) -> None:
    """Erasing a resident `$set`s an empty profile and `$unset`s openid, unionid and the last
    login; unsetting a field that is absent is not an error."""
    docs = await seeded(db, {"_id": 1, "openid": "o", "unionid": "u", "profile": {"a": 1}})

    result = await docs.update_one(
        {"_id": 1},
        {
            "$set": {"profile": {}, "deleted": True},
            "$unset": {"openid": "", "unionid": "", "last_login_at": ""},
        },
    )

    assert (result.matched_count, result.modified_count) == (1, 1)
    assert await stored(docs) == {"_id": 1, "profile": {}, "deleted": True}


async def test_inc_int32_and_int64_past_2_to_the_31(db: AsyncDatabase[Document]) -> None:
    """Cells hold sums of squares of scores in hundredths, which pass 2^31 after a few dozen
    assessments: `$inc` by Int64 must stay exact (no 32-bit wrap, no float), and an int32
    `$inc` on an int32 field must stay an exact integer too."""
    docs = await seeded(db, {"_id": 1, "small": 5, "big": Int64(2**31 - 10)})

    await docs.update_one({"_id": 1}, {"$inc": {"small": 7, "big": Int64(25)}})
    await docs.update_one({"_id": 1}, {"$inc": {"big": Int64(2**40), "fresh": Int64(3)}})

    doc = await stored(docs)
    assert doc == {"_id": 1, "small": 12, "big": 2**31 + 15 + 2**40, "fresh": 3}
    assert doc is not None
    assert isinstance(doc["big"], Int64)
    assert isinstance(doc["small"], int)
    assert isinstance(doc["fresh"], Int64)


async def test_set_on_insert_applies_only_when_inserting(db: AsyncDatabase[Document]) -> None:
    """A first login sets `created_at` and the role through `$setOnInsert`; later logins
    only `$set` the login time and must not reset them."""
    docs = db["docs"]
    first, later = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)

    inserted = await docs.update_one(
        {"openid": "o"},
        {"$setOnInsert": {"role": "resident", "created_at": first}, "$set": {"login": first}},
        upsert=True,
    )
    matched = await docs.update_one(
        {"openid": "o"},
        {"$setOnInsert": {"role": "admin", "created_at": later}, "$set": {"login": later}},
        upsert=True,
    )

    assert inserted.upserted_id is not None
    assert (matched.upserted_id, matched.matched_count) == (None, 1)
    assert await docs.find_one({}, {"_id": 0}) == {
        "openid": "o",
        "role": "resident",
        "created_at": first,
        "login": later,
    }


async def test_push_with_each_and_slice(db: AsyncDatabase[Document]) -> None:
    """`$push` with `$each` appends in order and `$slice: -n` keeps the last n (bounded lists
    of applied ids); a plain `$push` appends one value."""
    docs = await seeded(db, {"_id": 1, "ids": ["a", "b"]})

    await docs.update_one({"_id": 1}, {"$push": {"ids": {"$each": ["c", "d", "e"], "$slice": -4}}})
    assert await stored(docs) == {"_id": 1, "ids": ["b", "c", "d", "e"]}
    await docs.update_one({"_id": 1}, {"$push": {"ids": "f", "new": "x"}})
    assert await stored(docs) == {"_id": 1, "ids": ["b", "c", "d", "e", "f"], "new": ["x"]}


async def test_pull(db: AsyncDatabase[Document]) -> None:
    """`$pull` removes every element equal to the value, or matching a condition."""
    docs = await seeded(db, {"_id": 1, "tags": ["a", "b", "a", "c"], "scores": [1, 5, 9]})

    await docs.update_one({"_id": 1}, {"$pull": {"tags": "a", "scores": {"$gte": 5}}})

    assert await stored(docs) == {"_id": 1, "tags": ["b", "c"], "scores": [1]}


async def test_add_to_set(db: AsyncDatabase[Document]) -> None:
    """`$addToSet` adds a value only if absent (with `$each`, each absent value once)."""
    docs = await seeded(db, {"_id": 1, "tags": ["a"]})

    await docs.update_one({"_id": 1}, {"$addToSet": {"tags": "a"}})
    await docs.update_one({"_id": 1}, {"$addToSet": {"tags": {"$each": ["b", "a", "b", "c"]}}})

    assert await stored(docs) == {"_id": 1, "tags": ["a", "b", "c"]}


async def test_max_and_min(db: AsyncDatabase[Document]) -> None:
    """`$max`/`$min` replace a value only when the new one is greater/smaller (best score,
    first-seen time), and set a missing field."""
    early, late = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)
    docs = await seeded(db, {"_id": 1, "best": 70, "worst": 70, "first": late})

    await docs.update_one({"_id": 1}, {"$max": {"best": 60, "worst": 90}})
    await docs.update_one({"_id": 1}, {"$max": {"best": 85}, "$min": {"worst": 40, "first": early}})
    await docs.update_one({"_id": 1}, {"$min": {"worst": 50, "fresh": 3}})

    assert await stored(docs) == {"_id": 1, "best": 85, "worst": 40, "first": early, "fresh": 3}


async def test_dotted_paths_into_nested_documents(db: AsyncDatabase[Document]) -> None:
    """Dotted names reach into embedded documents and create missing levels as documents, also
    when a level is numeric-looking (targets are stored as `by_year.2025`), and `$inc` on
    dotted names leaves nested documents (the stored shape of cells)."""
    docs = db["docs"]

    await docs.update_one(
        {"_id": "targets"},
        {"$set": {"by_year.2025": 0.15, "set_by.2025": "admin"}},
        upsert=True,
    )
    await docs.update_one({"_id": "targets"}, {"$set": {"by_year.2026": 0.2}})
    await docs.update_one(
        {"_id": "cell"}, {"$inc": {"dims.science.sum": 80, "dims.science.n": 1}}, upsert=True
    )
    await docs.update_one({"_id": "cell"}, {"$inc": {"dims.science.sum": 20, "dims.health.n": 1}})
    await docs.update_one({"_id": "cell"}, {"$unset": {"dims.health": ""}})

    assert await stored(docs, "targets") == {
        "_id": "targets",
        "by_year": {"2025": 0.15, "2026": 0.2},
        "set_by": {"2025": "admin"},
    }
    assert await stored(docs, "cell") == {"_id": "cell", "dims": {"science": {"sum": 100, "n": 1}}}


async def test_set_with_array_filters(db: AsyncDatabase[Document]) -> None:
    """`arrayFilters` update exactly the array elements that match the identifier's filter."""
    docs = await seeded(
        db,
        {"_id": 1, "items": [{"qid": "q1"}, {"qid": "q2"}, {"qid": "q3"}, {"qid": "q2", "x": 0}]},
    )

    result = await docs.update_one(
        {"_id": 1}, {"$set": {"items.$[i].mark": 1}}, array_filters=[{"i.qid": "q2"}]
    )

    assert result.modified_count == 1
    assert await stored(docs) == {
        "_id": 1,
        "items": [
            {"qid": "q1"},
            {"qid": "q2", "mark": 1},
            {"qid": "q3"},
            {"qid": "q2", "x": 0, "mark": 1},
        ],
    }


async def test_find_one_and_update_returns_before_or_after(db: AsyncDatabase[Document]) -> None:
    """Editing a question returns the new version (AFTER); a first login learns whether it
    created the account from the document BEFORE (None when the upsert inserted)."""
    docs = await seeded(db, {"_id": 1, "version": 1, "title": "old"})

    before = await docs.find_one_and_update(
        {"_id": 1},
        {"$set": {"title": "new"}, "$inc": {"version": 1}},
        return_document=ReturnDocument.BEFORE,
    )
    after = await docs.find_one_and_update(
        {"_id": 1}, {"$inc": {"version": 1}}, return_document=ReturnDocument.AFTER
    )
    created = await docs.find_one_and_update(
        {"_id": 2}, {"$setOnInsert": {"version": 1}}, upsert=True
    )
    created_after = await docs.find_one_and_update(
        {"_id": 3},
        {"$setOnInsert": {"version": 1}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    projected = await docs.find_one_and_update(
        {"_id": 1},
        {"$set": {"seen": True}},
        projection={"version": 1, "_id": 0},
        return_document=ReturnDocument.AFTER,
    )
    missing = await docs.find_one_and_update({"_id": 99}, {"$set": {"x": 1}})

    assert before == {"_id": 1, "version": 1, "title": "old"}
    assert after == {"_id": 1, "version": 3, "title": "new"}
    assert created is None
    assert created_after == {"_id": 3, "version": 1}
    assert projected == {"version": 3}
    assert missing is None


async def test_update_many_and_replace_one_compare_and_set(db: AsyncDatabase[Document]) -> None:
    """Anonymising a resident's attempts sets `user_id` to null on all of them (`update_many`);
    a version snapshot is replaced only while its `at` is still the one read (`replace_one` as
    a compare-and-set), and `replace_one(upsert=True)` writes the census whole."""
    docs = db["docs"]
    await docs.insert_many(
        [{"_id": i, "user_id": "u1" if i < 3 else "u2", "at": 1} for i in range(5)]
    )

    anonymised = await docs.update_many(
        {"user_id": "u1"}, {"$set": {"user_id": None, "anonymised": True}}
    )
    replaced = await docs.replace_one({"_id": 4, "at": 1}, {"_id": 4, "at": 2, "body": "b"})
    stale = await docs.replace_one({"_id": 4, "at": 1}, {"_id": 4, "at": 3, "body": "stale"})
    census = await docs.replace_one({"_id": "census"}, {"_id": "census", "pop": 10}, upsert=True)

    assert (anonymised.matched_count, anonymised.modified_count) == (3, 3)
    assert await docs.count_documents({"user_id": None, "anonymised": True}) == 3
    assert replaced.modified_count == 1
    assert stale.matched_count == 0
    assert census.upserted_id == "census"
    assert await stored(docs, 4) == {"_id": 4, "at": 2, "body": "b"}
    assert await stored(docs, "census") == {"_id": "census", "pop": 10}


async def test_unordered_insert_many_reports_each_duplicate(db: AsyncDatabase[Document]) -> None:
    """Attempts are inserted in unordered batches; the service reads which ones were duplicates
    from the BulkWriteError's `writeErrors` (code 11000 and the index in the batch), while
    every other document of the batch is stored. (It must not read the reply's `nInserted`:
    mongo-java-server 1.47 counts the rejected documents in it too.)"""
    attempts = db["attempts"]
    await attempts.create_index("once_key", name="once_key", unique=True, sparse=True)
    await attempts.insert_one({"_id": "old", "once_key": "k0"})
    batch = [
        {"_id": "a1"},
        {"_id": "old"},  # duplicate _id
        {"_id": "a2", "once_key": "k0"},  # duplicate once_key
        {"_id": "a3", "once_key": "k3"},
        {"_id": "a1"},  # duplicate within the batch
        {"_id": "a4"},
    ]

    with pytest.raises(BulkWriteError) as caught:
        await attempts.insert_many(batch, ordered=False)

    errors = caught.value.details["writeErrors"]
    assert sorted((e["index"], e["code"]) for e in errors) == [(1, 11000), (2, 11000), (4, 11000)]
    assert sorted(await attempts.distinct("_id")) == ["a1", "a3", "a4", "old"]
