"""Who is calling: the principal a bearer token stands for."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str
    token_hash: str
