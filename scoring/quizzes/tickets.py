"""The quiz id is a signed ticket: everything needed to score the quiz (who, which question
versions, the option order shown, deadline), packed in binary and signed with HMAC-SHA256.
Starting a quiz therefore needs no database write, and a quiz issued before a Redis restart
can still be submitted. Tickets can't be forged or altered without the key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass

from bson import ObjectId

MODES = ("daily", "practice", "contest", "assessment", "adaptive")
# Version 1: no flags. Version 2: a flags byte after the version 1 header. A ticket without
# flags is still written as version 1, so a process still on older code (a rolling deploy)
# accepts it; every version stays decodable.
_VERSION = 1
_VERSION_FLAGS = 2
_HEADER = struct.Struct(">BB12sII6sB")  # version, mode, user, issued, deadline, nonce, count
_FLAGS = struct.Struct(">B")
_OFFLINE = 1  # flag bit: issued in an offline pack (answered without a connection)
_QUESTION = struct.Struct(">12sH3s")  # question id, version, option order (6 nibbles)
_MAC_BYTES = 16


class InvalidTicket(Exception):
    pass


@dataclass(frozen=True)
class QuizRef:
    question_id: str
    version: int
    order: tuple[str, ...]


@dataclass(frozen=True)
class Ticket:
    mode: str
    user_id: str
    issued_at: int
    deadline: int
    nonce: str
    questions: tuple[QuizRef, ...]
    channel: str = ""
    topic: str = ""
    # Adaptive practice only: right/wrong of each question answered so far (all but the last
    # question, which is the one being asked). Encoded after the topic; absent otherwise.
    results: tuple[bool, ...] = ()
    # Issued in an offline pack: valid for days, may be submitted in a batch with the time
    # it was answered (scoring.quizzes.offline_mode). Independent of the mode.
    offline: bool = False

    @property
    def attempt_id(self) -> str:
        return f"{self.user_id}:{self.nonce}"


def new_nonce() -> str:
    return secrets.token_hex(6)


def _pack_order(order: tuple[str, ...]) -> bytes:
    nibbles = ["ABCDEF".index(key) for key in order] + [15] * (6 - len(order))
    return bytes((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, 6, 2))


def _unpack_order(packed: bytes) -> tuple[str, ...]:
    nibbles = [n for byte in packed for n in (byte >> 4, byte & 15)]
    return tuple("ABCDEF"[n] for n in nibbles if n != 15)


def _short_text(value: str) -> bytes:
    raw = value.encode()[:64]
    return bytes([len(raw)]) + raw


def encode(ticket: Ticket, key: bytes) -> str:
    flags = _OFFLINE if ticket.offline else 0
    body = bytearray(
        _HEADER.pack(
            _VERSION_FLAGS if flags else _VERSION,
            MODES.index(ticket.mode),
            ObjectId(ticket.user_id).binary,
            ticket.issued_at,
            ticket.deadline,
            bytes.fromhex(ticket.nonce),
            len(ticket.questions),
        )
    )
    if flags:
        body += _FLAGS.pack(flags)
    for ref in ticket.questions:
        body += _QUESTION.pack(
            ObjectId(ref.question_id).binary, ref.version, _pack_order(ref.order)
        )
    body += _short_text(ticket.channel) + _short_text(ticket.topic)
    if ticket.results:
        body += bytes([len(ticket.results)]) + _pack_bits(ticket.results)
    mac = hmac.new(key, bytes(body), hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(bytes(body) + mac).rstrip(b"=").decode()


def decode(quiz_id: str, key: bytes, *previous: bytes) -> Ticket:
    """The ticket, if signed with `key` or with one of the `previous` keys (a key being
    rotated out: quizzes issued before the rotation stay valid until they expire)."""
    try:
        raw = base64.urlsafe_b64decode(quiz_id + "=" * (-len(quiz_id) % 4))
    except (ValueError, TypeError):
        raise InvalidTicket("not base64") from None
    body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if len(raw) <= _MAC_BYTES or not any(
        hmac.compare_digest(mac, hmac.new(k, body, hashlib.sha256).digest()[:_MAC_BYTES])
        for k in (key, *previous)
    ):
        raise InvalidTicket("bad signature")
    try:
        return _parse(body)
    except (struct.error, IndexError, ValueError):
        raise InvalidTicket("malformed") from None


def _parse(body: bytes) -> Ticket:
    version, mode, user, issued, deadline, nonce, count = _HEADER.unpack_from(body, 0)
    if version not in (_VERSION, _VERSION_FLAGS):
        raise ValueError("ticket version")
    offset = _HEADER.size
    flags = 0
    if version == _VERSION_FLAGS:
        (flags,) = _FLAGS.unpack_from(body, offset)
        offset += _FLAGS.size
    refs = []
    for _ in range(count):
        qid, qversion, order = _QUESTION.unpack_from(body, offset)
        refs.append(QuizRef(str(ObjectId(qid)), qversion, _unpack_order(order)))
        offset += _QUESTION.size
    channel_length = body[offset]
    channel = body[offset + 1 : offset + 1 + channel_length].decode()
    offset += 1 + channel_length
    topic = body[offset + 1 : offset + 1 + body[offset]].decode()
    offset += 1 + body[offset]
    results = _unpack_bits(body[offset + 1 :], body[offset]) if offset < len(body) else ()
    return Ticket(
        MODES[mode],
        str(ObjectId(user)),
        issued,
        deadline,
        nonce.hex(),
        tuple(refs),
        channel,
        topic,
        results,
        bool(flags & _OFFLINE),
    )


def _pack_bits(values: tuple[bool, ...]) -> bytes:
    number = sum(1 << i for i, value in enumerate(values) if value)
    return number.to_bytes((len(values) + 7) // 8, "big")


def _unpack_bits(packed: bytes, count: int) -> tuple[bool, ...]:
    if len(packed) != (count + 7) // 8:
        raise ValueError("results length")
    number = int.from_bytes(packed, "big")
    return tuple(bool(number >> i & 1) for i in range(count))
