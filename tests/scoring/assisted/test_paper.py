"""The paper answer forms read back with a PDF library: Chinese text extracted as printed,
fonts embedded, large type, each form on its own pages with its code and page markers, the
QR code carrying exactly the form code, the answer grid with one box per option."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pdfplumber
import pytest
import segno
from pdfminer.pdftypes import resolve1

from scoring.assisted import paper
from scoring.assisted.paper import PaperForm, PaperQuestion, render_forms

LONG_STEM = (
    "关于日常用电安全，下列说法正确的有哪些？请选出所有正确的选项，注意有些说法听起来有道理"
    "但其实是错误的，例如用湿手触摸开关，或在同一个插座上同时使用多个大功率电器（如 2000W "
    "的电暖器和电饭煲）。"
)
LONG_OPTION = "发现有人触电，应先切断电源再施救，不要直接用手去拉触电的人，也不要用金属物品去挑电线"
PT_PER_MM = 72 / 25.4


def question(number: int, stem: str, options: list[str], multiple: bool = False) -> PaperQuestion:
    return PaperQuestion(number, stem, tuple(zip("ABCDEF", options, strict=False)), multiple)


FIRST = PaperForm(
    code="PF-7K3M-9QXD",
    title="公民科学素质测评（纸质答卷）",
    township_name="城关镇",
    mode_label="月度科学素质测评",
    issued_on="2026-12-05",
    questions=(
        question(
            1,
            "下列哪种做法能有效预防流感？",
            ["每年按时接种流感疫苗", "经常喝热水", "多吃大蒜", "服用抗生素"],
        ),
        question(2, "地球绕太阳公转一周大约需要一年。", ["正确", "错误"]),
        question(
            3,
            LONG_STEM,
            [
                "不用湿手触摸电器开关和插座",
                LONG_OPTION,
                "电器着火时可以直接用水浇灭",
                "家中应安装漏电保护器",
            ],
            True,
        ),
        question(
            4,
            "二氧化碳（CO2）浓度升高会导致什么？",
            ["全球气候变暖", "臭氧层变厚", "海平面下降", "空气中氧气含量增加到 50% 以上"],
        ),
        question(
            5,
            "下列哪些属于可再生能源？",
            ["太阳能", "风能", "煤炭", "水能", "石油", "生物质能"],
            True,
        ),
        *(
            question(
                n,
                f"第{n}题：植物进行光合作用时，主要吸收空气中的哪种气体？",
                ["氧气", "二氧化碳", "氮气", "氢气"],
            )
            for n in range(6, 13)
        ),
    ),
)
SECOND = PaperForm(
    code="PF-4HWN-C3RA",
    title="科普知识练习（纸质答卷）",
    township_name="石门坎乡",
    mode_label="科普练习",
    issued_on="2026-12-06",
    questions=(
        question(1, "人体正常体温约为多少摄氏度？", ["35.0℃", "36.5℃左右", "38.5℃", "40℃"]),
        question(2, "打雷时可以在大树下避雨。", ["正确", "错误"]),
    ),
)
FORMS = (FIRST, SECOND)


def flat(text: str) -> str:
    return "".join(text.split())


@pytest.fixture(scope="module")
def pdf_bytes() -> bytes:
    return render_forms(FORMS)


@pytest.fixture(scope="module")
def pdf(pdf_bytes: bytes) -> Iterator[Any]:
    with pdfplumber.open(io.BytesIO(pdf_bytes)) as document:
        yield document


@pytest.fixture(scope="module")
def texts(pdf: Any) -> list[str]:
    return [page.extract_text() for page in pdf.pages]


@pytest.fixture(scope="module")
def pages_by_form(texts: list[str]) -> dict[str, list[tuple[int, int, int]]]:
    """Form code -> (page index, n, m) of its pages, from the running heads."""
    out: dict[str, list[tuple[int, int, int]]] = {}
    for index, text in enumerate(texts):
        code = re.search(r"表单编号：(PF-[0-9A-Z]{4}-[0-9A-Z]{4})", text)
        marker = re.search(r"第 (\d+) / (\d+) 页", text)
        assert code and marker, f"page {index + 1} lacks its form code or page marker"
        out.setdefault(code.group(1), []).append(
            (index, int(marker.group(1)), int(marker.group(2)))
        )
    return out


def test_every_page_carries_its_form_code_and_page_of_pages(
    pages_by_form: dict[str, list[tuple[int, int, int]]], texts: list[str]
) -> None:
    assert list(pages_by_form) == [form.code for form in FORMS]
    start = 0
    for form in FORMS:
        pages = pages_by_form[form.code]
        count = len(pages)
        assert count >= 2  # these forms don't fit one page in large type
        assert [index for index, _n, _m in pages] == list(range(start, start + count))
        assert [(n, m) for _index, n, m in pages] == [(n, count) for n in range(1, count + 1)]
        # each form starts on a new page: its title and header on its first page only
        assert form.title in texts[start] and f"发放日期：{form.issued_on}" in texts[start]
        assert "居民编号" in texts[start] and "协助人" in texts[start] and "日期" in texts[start]
        assert paper.INSTRUCTION in texts[start]
        assert f"乡镇：{form.township_name}" in texts[start]
        assert f"类型：{form.mode_label}" in texts[start]
        start += count
    assert start == len(texts)
    assert "第 1 / " in texts[0] and f"第 {len(pages_by_form[FIRST.code])} / " in texts[start - 3]


def test_chinese_text_is_extracted_as_printed(
    texts: list[str], pages_by_form: dict[str, list[tuple[int, int, int]]]
) -> None:
    for form in FORMS:
        text = "\n".join(texts[index] for index, _n, _m in pages_by_form[form.code])
        assert "\x00" not in text and "(cid:" not in text and "\ufffd" not in text
        assert "第 1 / " in text and form.code in text
        whole = flat(text)
        for q in form.questions:
            assert flat(q.stem) in whole, q.stem
            for key, option in q.options:
                assert f"{key}.{flat(option)}" in whole, option
            if q.multiple:
                assert f"{q.number}.（多选）" in whole
        assert "二、答题格" in text and "题号" in text


def test_fonts_are_embedded(pdf: Any) -> None:
    names = set()
    for page in pdf.pages:
        for font in resolve1(page.page_obj.resources["Font"]).values():
            font = resolve1(font)
            descendant = resolve1(resolve1(font["DescendantFonts"])[0])
            descriptor = resolve1(descendant["FontDescriptor"])
            assert {"FontFile", "FontFile2", "FontFile3"} & set(descriptor), font
            names.add(resolve1(font["BaseFont"]).name)
    assert any("NotoSansCJK" in name for name in names), names


def test_large_type_on_a4_portrait(pdf: Any) -> None:
    sizes = set()
    for page in pdf.pages:
        assert round(page.width) == 595 and round(page.height) == 842
        for char in page.chars:
            if char["text"].strip():
                sizes.add(round(char["size"], 1))
                assert char["non_stroking_color"] in ((0,), (0.0,), [0], [0.0], 0, None), char
    assert min(sizes) >= 16
    assert max(sizes) >= 24  # headings larger
    # stems and options (the body) at 17–18 pt
    first = pdf.pages[0]
    for text, size in ((FIRST.questions[0].stem, 18), (FIRST.questions[0].options[0][1], 17)):
        (found,) = first.search(text, regex=False)
        assert {round(c["size"]) for c in found["chars"]} == {size}


def test_qr_code_is_the_form_code(
    pdf: Any, pages_by_form: dict[str, list[tuple[int, int, int]]]
) -> None:
    for form in FORMS:
        page = pdf.pages[pages_by_form[form.code][0][0]]
        modules = [r for r in page.rects if r["fill"] and not r["stroke"]]
        assert modules
        expected = segno.make_qr(form.code, error="m").matrix
        x0 = min(r["x0"] for r in modules)
        top = min(r["top"] for r in modules)
        size = (max(r["x1"] for r in modules) - x0) / len(expected)
        assert size * len(expected) / PT_PER_MM == pytest.approx(paper.QR_SIZE, abs=0.5)

        drawn = [
            [
                _dark(modules, x0 + (c + 0.5) * size, top + (r + 0.5) * size)
                for c in range(len(expected))
            ]
            for r in range(len(expected))
        ]
        assert drawn == [[bool(v) for v in row] for row in expected]
        # nothing else within the quiet zone of 4 modules
        zone = (
            x0 - 4 * size,
            top - 4 * size,
            x0 + (len(expected) + 4) * size,
            top + (len(expected) + 4) * size,
        )
        inside = page.crop(zone, strict=False)
        assert not inside.chars


def _dark(modules: list[dict[str, Any]], x: float, y: float) -> bool:
    return any(r["x0"] <= x <= r["x1"] and r["top"] <= y <= r["bottom"] for r in modules)


def test_answer_grid_has_a_box_per_option(
    pdf: Any, pages_by_form: dict[str, list[tuple[int, int, int]]]
) -> None:
    for form in FORMS:
        boxes = 0
        for index, _n, _m in pages_by_form[form.code]:
            for rect in pdf.pages[index].rects:
                w, h = rect["width"] / PT_PER_MM, rect["height"] / PT_PER_MM
                if rect["stroke"] and not rect["fill"] and abs(w - h) < 0.01 and 5 <= w <= 8:
                    boxes += 1
        assert boxes == sum(len(q.options) for q in form.questions)  # true/false: A and B only


def test_long_lines_wrap_by_character_keeping_latin_words() -> None:
    with paper._FACES_LOCK:
        measure = paper._Measure(paper._faces())
    width = 120.0
    lines = measure.wrap([(LONG_STEM + LONG_OPTION, False)], 18, width)
    assert len(lines) > 3
    texts = ["".join(t.text for t in line) for line in lines]
    assert flat("".join(texts)) == flat(LONG_STEM + LONG_OPTION)
    for line, text in zip(lines, texts, strict=True):
        assert sum(t.width for t in line) <= width + 1e-6
        assert text[0] not in "，。、；：？！）", text
        assert text[-1] not in "（“", text
        assert text == text.strip()
    assert any("2000W" in text for text in texts)


def test_same_input_same_bytes(pdf_bytes: bytes) -> None:
    assert render_forms(FORMS) == pdf_bytes


def test_many_forms_render_with_consistent_page_counts() -> None:
    forms = [
        PaperForm(
            code=f"PF-9QXD-{n:04d}",
            title="公民科学素质测评（纸质答卷）",
            township_name="城关镇",
            mode_label="月度科学素质测评",
            issued_on="2026-12-05",
            questions=tuple(
                question(
                    k,
                    f"第{k}题：{LONG_STEM[: 20 + k]}",
                    ["正确", "错误"] if k % 7 == 0 else ["甲", "乙", "丙", "丁"],
                    k % 5 == 0,
                )
                for k in range(1, 31)
            ),
        )
        for n in range(20)
    ]
    with pdfplumber.open(io.BytesIO(render_forms(forms))) as document:
        markers = [
            re.search(r"PF-9QXD-(\d{4}).*?第 (\d+) / (\d+) 页", page.extract_text())
            for page in document.pages[::5]
        ]
        total = len(document.pages)
    assert all(markers)
    counts = {int(m.group(3)) for m in markers if m}
    assert len(counts) == 1 and total == 20 * counts.pop()


def test_options_must_be_shown_in_order() -> None:
    bad = PaperForm(
        "PF-AAAA-AAAA",
        "t",
        "t",
        "t",
        "2026-12-05",
        (PaperQuestion(1, "题", (("B", "x"), ("A", "y")), False),),
    )
    with pytest.raises(ValueError, match="A, B"):
        render_forms([bad])


def test_missing_fonts_name_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(paper, "_FACES", {})
    monkeypatch.setattr(paper, "REGULAR_FONT", tmp_path / "NotoSansCJK-Regular.ttc")
    with pytest.raises(paper.FontsMissing, match="fonts-noto-cjk"):
        render_forms([SECOND])
