"""The county's shared vocabularies: question and article labels (with the Chinese names
editors use in spreadsheets) and the census age bands."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator

QuestionType = Literal["single", "multiple", "true_false"]
Dimension = Literal["knowledge", "method", "spirit", "application"]
Audience = Literal["farmer", "elderly", "youth", "worker", "official", "general"]
Status = Literal["draft", "in_review", "published", "retired"]

TYPE_LABELS: dict[str, str] = {"single": "单选", "multiple": "多选", "true_false": "判断"}
DIMENSION_LABELS: dict[str, str] = {
    "knowledge": "科学知识",
    "method": "科学方法",
    "spirit": "科学精神与思想",
    "application": "应用科学的能力",
}
AUDIENCE_LABELS: dict[str, str] = {
    "farmer": "农民",
    "elderly": "老年人",
    "youth": "青少年",
    "worker": "产业工人",
    "official": "领导干部和公务员",
    "general": "公众",
}
TOPICS: tuple[str, ...] = (
    "健康",
    "农业",
    "安全应急",
    "防诈骗与数字生活",
    "破除迷信与伪科学",
    "生态环境",
    "前沿科技",
    "能源",
)


def known_topic(value: str) -> str:
    if value not in TOPICS:
        raise ValueError(f"未知主题「{value}」，可选：{'、'.join(TOPICS)}")
    return value


Topic = Annotated[str, AfterValidator(known_topic)]  # one of TOPICS, refused with the choices
STATUS_LABELS: dict[str, str] = {
    "draft": "草稿",
    "in_review": "待审核",
    "published": "已发布",
    "retired": "已下线",
}
OPTION_KEYS = ("A", "B", "C", "D", "E", "F")
TRUE_FALSE_OPTIONS = (("A", "对"), ("B", "错"))


AGE_BANDS = (
    (0, 17, "0-17"),
    (18, 29, "18-29"),
    (30, 39, "30-39"),
    (40, 49, "40-49"),
    (50, 59, "50-59"),
    (60, 69, "60-69"),
    (70, 200, "70+"),
)

# The national survey's headline share covers residents aged 18-69.
HEADLINE_AGE_BANDS = ("18-29", "30-39", "40-49", "50-59", "60-69")


def age_band(birth_year: int | None, year: int) -> str | None:
    if birth_year is None:
        return None
    age = year - birth_year
    return next(band for low, high, band in AGE_BANDS if low <= age <= high) if age >= 0 else None
