"""Command line: `python -m server serve [--workers N] | create-user | seed-demo | rebuild-stats
| rescore`."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from scoring.quizzes import service as quiz_service
from server import workers
from server.accounts import service as users
from server.kernel import lifecycle, store
from server.kernel.errors import ApiError
from server.kernel.logs import configure_logging
from server.kernel.schema import bootstrap
from server.kernel.settings import Settings, describe_validation_error

_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        print(describe_validation_error(error), file=sys.stderr)
        raise SystemExit(2) from None


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[AsyncDatabase]:
    client = store.open_client(settings.mongodb_uri, serverSelectionTimeoutMS=5000)
    try:
        db = client[settings.mongodb_db]
        await bootstrap(db)
        yield db
    finally:
        await client.close()


def serve(settings: Settings, args: argparse.Namespace) -> None:
    count = args.workers
    if count is None:
        try:
            count = workers.default_count()
        except ValueError as error:
            print(error, file=sys.stderr)
            raise SystemExit(2) from None
    status = workers.serve(settings, count)
    if status:
        raise SystemExit(status)


def create_user(settings: Settings, args: argparse.Namespace) -> None:
    if not _USERNAME.match(args.username):
        raise SystemExit("username: 3-64 letters, digits, '_', '.' or '-'")
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        raise SystemExit("password (read from standard input) must have at least 8 characters")

    async def run() -> str:
        async with database(settings) as db:
            return await users.create_staff(
                db, username=args.username, password=password, role=args.role
            )

    try:
        print(asyncio.run(run()))
    except ApiError as error:
        raise SystemExit(error.message) from None


def seed_demo(settings: Settings, args: argparse.Namespace) -> None:
    from server import seed

    async def run() -> dict[str, int]:
        async with database(settings) as db:
            return await seed.seed_demo(db, assessments=not args.no_assessments)

    for name, count in asyncio.run(run()).items():
        print(f"{name}: {count}")


def rebuild_stats(settings: Settings, _args: argparse.Namespace) -> None:

    async def run() -> int:
        async with database(settings) as db:
            return await quiz_service.rebuild_cells(db)

    print(f"cells: {asyncio.run(run())}")


def rescore(settings: Settings, _args: argparse.Namespace) -> None:
    """Re-score every stored assessment on the current IRT scale and rebuild the cells."""

    async def run() -> dict[str, object]:
        async with database(settings) as db, lifecycle.open_kv(settings) as kv:
            return await quiz_service.rescore_with_scale(db, kv)

    result = asyncio.run(run())
    print(", ".join(f"{name}: {value}" for name, value in result.items()))


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Awaitable[None] | None]] = {
    "serve": serve,
    "create-user": create_user,
    "seed-demo": seed_demo,
    "rebuild-stats": rebuild_stats,
    "rescore": rescore,
}


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="start the HTTP server")
    serve_parser.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="worker processes (default: WEB_CONCURRENCY, else the CPUs this process may use); "
        "1 serves in this process, more start a master that restarts them",
    )
    create = sub.add_parser("create-user", help="create a staff user; password on standard input")
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=["editor", "analyst", "admin"])
    demo = sub.add_parser("seed-demo", help="load the demo county idempotently")
    demo.add_argument(
        "--no-assessments", action="store_true", help="skip the synthetic demo assessments"
    )
    sub.add_parser("rebuild-stats", help="recompute the literacy cells from the stored assessments")
    sub.add_parser(
        "rescore", help="re-score the stored assessments on the current IRT scale, then the cells"
    )
    args = parser.parse_args(argv)
    configure_logging()
    COMMANDS[args.command](load_settings(), args)


if __name__ == "__main__":
    main()
