from pymongo.asynchronous.database import AsyncDatabase


async def seed_demo(db: AsyncDatabase) -> int:
    return 0
