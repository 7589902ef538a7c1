"""Calibration jobs: requested by an analyst or admin, or by the schedule; run in the
background of the process that took the request, one at a time across all processes (a lease
in MongoDB); their results stored as the bank's item parameters.

A request while a calibration is running (a double tap, two admins, the schedule) gets the
running job's id rather than a second run. A runner renews its lease while it works; if its
process dies, the job is reported as failed ("interrupted") once the lease lapses, and the next
request starts afresh. The calibration itself is CPU work in a thread (numpy releases the GIL
for most of it), so requests keep being served meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from question_bank import item_params
from question_bank.cache import BankCache
from scoring.irt import pipeline, storage
from server.kernel.clock import now
from server.kernel.errors import NotFound
from server.kernel.kv import Kv
from server.kernel.logs import log_background_failure

log = logging.getLogger(__name__)

Document = dict[str, Any]
LEASE = timedelta(seconds=120)
RENEW_EVERY_SECONDS = 30.0
# The schedule: every process looks once an hour whether the newest finished calibration is
# older than a day, and starts one if so (the lease keeps it to one run).
SCHEDULE_CHECK_SECONDS = 3600.0
CALIBRATE_EVERY = timedelta(days=1)

ResponseSource = Callable[[AsyncDatabase], AsyncIterable[Document]]


INGEST_BATCH = 2_000  # attempts folded into the responses per thread hop


class LeaseLost(Exception):
    """This runner no longer holds the calibration lease: it must not publish."""


class JobNotFound(NotFound):
    code = "job_not_found"
    message = "找不到该校准任务"


@dataclass
class Calibrations:
    """The job runner of one app process."""

    db: AsyncDatabase
    kv: Kv
    bank: BankCache
    responses: ResponseSource  # the stored attempts (the quizzes domain owns them)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def request(self, actor: str) -> str:
        """Start a calibration, or return the id of the one already running."""
        job_id = uuid.uuid4().hex
        started = now()
        await storage.insert_job(
            self.db,
            {"_id": job_id, "status": "queued", "requested_by": actor, "created_at": started},
        )
        if not await storage.take_lease(self.db, job_id, started, LEASE):
            holder = await storage.lease_holder(self.db, now())
            if holder == job_id:
                pass  # our own take, whose reply was lost and retried: we hold it
            else:
                await storage.delete_job(self.db, job_id)
                if holder is not None:
                    return holder
                return await self.request(actor)  # the holder finished in between: again
        try:
            await storage.update_job(self.db, job_id, {"status": "running", "started_at": now()})
        except BaseException:
            with contextlib.suppress(Exception):  # no runner: let the next request start one
                await storage.release_lease(self.db, job_id)
            raise
        task = asyncio.create_task(self._run(job_id), name=f"irt-calibration-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job_id

    async def _run(self, job_id: str) -> None:
        job = asyncio.current_task()
        assert job is not None
        renewer = asyncio.create_task(self._renew(job_id, job))
        started = time.monotonic()
        try:
            summary = await self._calibrate(job_id)
        except pipeline.NotLinkable as error:
            await self._fail(job_id, "not_linkable", f"无法与上一次校准衔接：{error}")
        except LeaseLost:
            await self._fail(
                job_id, "interrupted", "校准租约已失效（存储中断），结果未保存，请重新发起"
            )
        except asyncio.CancelledError:
            await self._fail(job_id, "interrupted", "服务停止或租约失效，校准中断，请重新发起")
            raise
        except Exception:
            log_background_failure(log, "IRT calibration failed")
            await self._fail(job_id, "failed", "校准失败，详情见服务日志")
        else:
            summary["seconds"] = round(time.monotonic() - started, 2)
            await storage.update_job(
                self.db, job_id, {"status": "done", "finished_at": now(), "summary": summary}
            )
            log.info("IRT calibration done", extra={"job": job_id, **_loggable(summary)})
        finally:
            renewer.cancel()
            with contextlib.suppress(Exception):
                await storage.release_lease(self.db, job_id)

    async def _calibrate(self, job_id: str) -> Document:
        # Reading is Python work on every answer: each batch is folded in a thread, so the
        # event loop keeps serving requests between the cursor's round trips.
        responses = pipeline.FirstResponses()
        batch: list[Document] = []
        async for attempt in self.responses(self.db):
            batch.append(attempt)
            if len(batch) >= INGEST_BATCH:
                await asyncio.to_thread(responses.add_all, batch)
                batch = []
        await asyncio.to_thread(responses.add_all, batch)
        previous, scale = await _previous_params(self.db)
        items = pipeline.item_infos(self.bank.docs.values())
        outcome = await asyncio.to_thread(
            pipeline.compute,
            responses,
            items,
            previous=previous,
            scale=scale,
            job_id=job_id,
            now=now(),
        )
        # Publish only while still the one runner: a runner that lost its lease (storage away
        # for longer than LEASE) may have been replaced, and two must not both write.
        if not await storage.renew_lease(self.db, job_id, now(), LEASE):
            raise LeaseLost()
        if not await item_params.publish(
            self.db, self.kv, params=outcome.params, scale=outcome.scale
        ):
            raise LeaseLost()  # a scale appeared meanwhile: these parameters are not on it
        await self.bank.load(self.db)  # this process scores with them at once
        return outcome.summary

    async def _renew(self, job_id: str, job: asyncio.Task[None]) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY_SECONDS)
            try:
                held = await storage.renew_lease(self.db, job_id, now(), LEASE)
                await storage.update_job(self.db, job_id, {"heartbeat_at": now()})
            except Exception:  # storage away: try again; the lease is four renewals long
                log_background_failure(log, "IRT calibration lease not renewed; retrying")
                continue
            if not held:
                job.cancel()  # another runner may have started: stop before publishing
                return

    async def _fail(self, job_id: str, code: str, message: str) -> None:
        with contextlib.suppress(Exception):
            await storage.update_job(
                self.db,
                job_id,
                {
                    "status": "failed",
                    "finished_at": now(),
                    "error": {"code": code, "message": message},
                },
            )

    async def stop(self) -> None:
        """Cancel this process's running calibration (it is marked interrupted)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)

    async def run_schedule(self, stop: asyncio.Event) -> None:
        """Calibrate once a day (whichever process looks first). A failed job counts as the
        day's run too, so a calibration that cannot link is not retried every hour."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=SCHEDULE_CHECK_SECONDS)
                return
            try:
                latest = await storage.latest_job(self.db)
                if latest is None or latest["created_at"] < now() - CALIBRATE_EVERY:
                    await self.request("schedule")
            except Exception:
                log_background_failure(log, "scheduled IRT calibration could not start")


async def _previous_params(db: AsyncDatabase) -> tuple[dict[str, Document], Document | None]:
    """The stored parameters by "id:version" and the scale document, read fresh (not from
    the cache) since linking must use exactly what is stored."""
    docs, scale = await item_params.stored(db)
    return {f"{d['question_id']}:{d['version']}": d for d in docs}, scale


async def job_view(db: AsyncDatabase, job_id: str) -> Document:
    """A job's status and summary; a running job whose runner stopped renewing its lease is
    reported as interrupted."""
    job = await storage.get_job(db, job_id)
    if job is None:
        raise JobNotFound()
    if job["status"] in ("queued", "running") and await storage.lease_holder(db, now()) != job_id:
        # Read again: the runner writes "done" before it lets the lease go.
        job = await storage.get_job(db, job_id) or job
        if job["status"] in ("queued", "running"):
            job = {
                **job,
                "status": "failed",
                "error": {"code": "interrupted", "message": "校准进程已停止，校准中断，请重新发起"},
            }
    status, error = job["status"], job.get("error")
    return {
        "job_id": job_id,
        "status": status,
        "requested_by": job.get("requested_by"),
        "created_at": _iso(job.get("created_at")),
        "started_at": _iso(job.get("started_at")),
        "finished_at": _iso(job.get("finished_at")),
        "summary": job.get("summary"),
        "error": error,
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _loggable(summary: Document) -> Document:
    return {k: v for k, v in summary.items() if isinstance(v, int | float | str | bool)}
