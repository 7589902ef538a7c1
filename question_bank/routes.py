from aiohttp import web


def setup(app: web.Application, api: str) -> None:
    """Question-bank routes arrive with the question-bank issue."""
