"""Paper answer forms in large type (适老化) for residents without smartphones: one PDF of
numbered forms that community science helpers print, read aloud and fill in. Pure: forms in,
PDF bytes out; the only I/O is reading Debian's Noto Sans CJK fonts (fonts-noto-cjk).

A form: a running head on every page (form code and 第 n / m 页, so loose pages can be
matched), then on its first page the title, mode, township, issue date, the form code in
large print and as a QR code (encoding exactly the code), the instruction line and the fields
filled in by hand (居民编号 in boxes, 协助人, 日期); the numbered questions, each option on a
line of its own ("A. 选项文字"), multiple-answer questions marked （多选）; then the answer
grid, question number × option letter with a box to tick (a true/false question has only
A and B). Text is black on white, stems 18 pt and options 17 pt (nothing under 16 pt), lines
at 1.5 times the type size, A4 portrait with 20 mm margins. Chinese wraps at any character,
Latin words and numbers are kept whole where they fit, and closing punctuation never starts a
line nor opening punctuation ends one.

The library, by measurement (20 forms × 30 questions of a few repeated sentences, 160 pages,
wall time of a whole process on the project's 2-core machine):

- reportlab: its TTFont can't load Noto Sans CJK at all ("postscript outlines are not
  supported": the faces are CFF-flavoured OpenType in a TTC).
- weasyprint: 5.2 s and 210 MB for HTML of the same text, and it needs Pango and cairo
  from the system: too heavy for one PDF route.
- fpdf2 (pure Python, fontTools): 2.4 s and 170 MB loading the TTC faces directly. But it
  embeds a CID-keyed CFF font with an embedded Encoding CMap, which pdfminer/pdfplumber and
  pypdf can't read (no text, or text with NULs); only PDFium could. So we hand fpdf2 a font
  of its most widely read kind instead: a TrueType font built here with fontTools from the
  Simplified Chinese face, holding only the glyphs the PDF uses (cubic outlines converted to
  quadratic within 1 font unit), embedded as a CIDFontType2 with Identity-H and a ToUnicode
  map, which every reader we tried extracts. The layout is computed here (a list of drawing
  operations per page, measured with the font's own advance widths), so the per-form page
  count m is known before anything is drawn, and fpdf2 only replays it.

  Measured with this module: 20 forms × 30 questions of real bank text (217 pages, 1,850
  distinct characters, more than a real batch) in 2.2–2.8 s on a cold process (reading the
  font's tables, converting the glyphs, fpdf2 subsetting and writing), 1.2–1.4 s once the
  glyphs are cached; one form 0.45 s warm; 660 KB; 220 MB peak for the process.

Converted glyphs are cached per process (bounded by the characters the forms ever use, a few
thousand at most); the cache and the font file are shared under a lock, so render_forms may
run in threads (asyncio.to_thread). The output is deterministic for the same input (the PDF's
creation date is the first form's issue date)."""

from __future__ import annotations

import io
import math
import re
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import segno
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTCollection, TTFont
from fontTools.ttLib.tables._g_l_y_f import Glyph
from fpdf import FPDF

# ---------------------------------------------------------------- the forms


@dataclass(frozen=True)
class PaperQuestion:
    number: int  # 1-based on the form
    stem: str
    options: tuple[tuple[str, str], ...]  # (shown key "A".."F", option text), in shown order
    multiple: bool  # more than one option may be right (said on the form: 多选)


@dataclass(frozen=True)
class PaperForm:
    code: str  # form code, e.g. "PF-7K3M-9QXD"
    title: str  # e.g. "公民科学素质测评（纸质答卷）"
    township_name: str
    mode_label: str  # e.g. "月度测评" or "练习"
    issued_on: str  # e.g. "2026-12-05"
    questions: tuple[PaperQuestion, ...]


SHOWN_KEYS = "ABCDEF"
INSTRUCTION = "请在答题格中勾选所选选项；多选题可勾选多个。"
RESIDENT_CODE_GROUPS = (4, 4)  # a resident's card code is "XXXX-XXXX"

# ---------------------------------------------------------------- fonts

FONT_DIR = Path("/usr/share/fonts/opentype/noto")
REGULAR_FONT = FONT_DIR / "NotoSansCJK-Regular.ttc"
BOLD_FONT = FONT_DIR / "NotoSansCJK-Bold.ttc"
FACE_FAMILY = "Noto Sans CJK SC"  # the Simplified Chinese face of the collection
FONT_PACKAGE = "fonts-noto-cjk"
FAMILY = "notosanssc"
MISSING_GLYPH = "□"  # drawn for a character the font doesn't have


class FontsMissing(RuntimeError):
    """The Noto Sans CJK fonts are not installed."""


class _Face:
    """One face of the TTC: its character map and advance widths for layout, and its
    outlines converted to TrueType on demand (cached)."""

    def __init__(self, path: Path, bold: bool) -> None:
        if not path.is_file():
            raise FontsMissing(
                f"纸质答卷需要思源黑体（Noto Sans CJK）：{path} 不存在。"
                f"请安装 Debian 的 {FONT_PACKAGE} 软件包（apt-get install {FONT_PACKAGE}）。"
            )
        self.bold = bold
        self.font = TTFont(path, fontNumber=_face_index(path), lazy=True)
        self.units = int(self.font["head"].unitsPerEm)
        self.cmap: dict[int, str] = dict(self.font.getBestCmap())
        self.advances: dict[str, int] = {
            name: advance for name, (advance, _lsb) in self.font["hmtx"].metrics.items()
        }
        self.glyph_set = self.font.getGlyphSet()
        self.glyphs: dict[str, bytes] = {}  # compiled TrueType glyphs
        self.widths: dict[str, float] = {}  # per character, in em

    def em(self, char: str) -> float:
        width = self.widths.get(char)
        if width is None:
            name = self.cmap.get(ord(char), ".notdef")
            width = self.widths[char] = self.advances[name] / self.units
        return width

    def truetype(self, chars: Iterable[str]) -> bytes:
        """A TrueType font holding just these characters' glyphs."""
        mapping = {ord(c): self.cmap[ord(c)] for c in sorted(set(chars)) if ord(c) in self.cmap}
        order = [".notdef", *sorted(set(mapping.values()) - {".notdef"})]
        for name in order:
            if name not in self.glyphs:
                pen = TTGlyphPen(None)
                self.glyph_set[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
                self.glyphs[name] = pen.glyph().compile(None)  # compiled once
        builder = FontBuilder(self.units, isTTF=True)
        head = self.font["head"]
        builder.updateHead(created=head.created, modified=head.modified)
        builder.font.recalcTimestamp = False  # the same bytes for the same characters
        builder.setupGlyphOrder(order)
        builder.setupCharacterMap(mapping)
        builder.setupGlyf({name: _expanded(self.glyphs[name]) for name in order})
        metrics = self.font["hmtx"].metrics
        builder.setupHorizontalMetrics({name: metrics[name] for name in order})
        hhea = self.font["hhea"]
        builder.setupHorizontalHeader(
            ascent=hhea.ascent, descent=hhea.descent, lineGap=hhea.lineGap
        )
        style = "Bold" if self.bold else "Regular"
        builder.setupNameTable(
            {
                "familyName": "Noto Sans CJK SC",
                "styleName": style,
                "psName": f"NotoSansCJKsc-{style}",
            }
        )
        os2 = self.font["OS/2"]
        builder.setupOS2(
            usWeightClass=os2.usWeightClass,
            fsType=os2.fsType,
            sTypoAscender=os2.sTypoAscender,
            sTypoDescender=os2.sTypoDescender,
            sTypoLineGap=os2.sTypoLineGap,
            usWinAscent=os2.usWinAscent,
            usWinDescent=os2.usWinDescent,
            sxHeight=os2.sxHeight,
            sCapHeight=os2.sCapHeight,
        )
        builder.setupPost()
        out = io.BytesIO()
        builder.save(out)
        return out.getvalue()


def _expanded(data: bytes) -> Glyph:
    """A fresh glyph from its compiled form, so every save compiles the same input."""
    glyph = Glyph(data)
    glyph.expand(None)
    return glyph


def _face_index(path: Path) -> int:
    collection = TTCollection(path, lazy=True)
    try:
        for index, face in enumerate(collection.fonts):
            if face["name"].getDebugName(1) == FACE_FAMILY:
                return index
    finally:
        collection.close()
    raise FontsMissing(f"{path} 中没有 {FACE_FAMILY} 字体（{FONT_PACKAGE} 软件包不完整？）")


_FACES: dict[bool, _Face] = {}
_FACES_LOCK = threading.Lock()


def _faces() -> dict[bool, _Face]:
    """Regular (False) and bold (True); call with _FACES_LOCK held."""
    if not _FACES:
        regular, bold = _Face(REGULAR_FONT, False), _Face(BOLD_FONT, True)
        _FACES.update({False: regular, True: bold})
    return _FACES


# ---------------------------------------------------------------- layout

MM_PER_PT = 25.4 / 72
PAGE_WIDTH, PAGE_HEIGHT = 210.0, 297.0
LEFT, RIGHT = 20.0, 190.0
WIDTH = RIGHT - LEFT
TOP, BOTTOM = 14.0, 279.0
LEADING = 1.5  # line height / type size

HEAD_PT = 16  # the running head on every page
TITLE_PT = 24
META_PT = 18
CODE_PT = 26
INSTRUCTION_PT = 17
FIELD_PT = 18
SECTION_PT = 20
STEM_PT = 18
OPTION_PT = 17
GRID_PT = 18
GRID_TAG_PT = 16

QR_SIZE = 36.0
QUESTION_INDENT = 13.0  # the stem after "12."
OPTION_INDENT = 11.0  # the option text after "A."
QUESTION_GAP = 5.0
LINE_WIDTH = 0.4
BOX = 7.5  # a tick box in the grid
CODE_BOX = 10.0  # a character box of the resident code

_WORD = re.compile(r"[A-Za-z0-9]+(?:[-.,:/'’+_×·][A-Za-z0-9]+)*%?|\s+|.", re.DOTALL)
_NO_LINE_START = set("，。、；：？！）》」』】〕〉”’…,.;:?!)]}%·")
_NO_LINE_END = set("（《「『【〔〈“‘([{")
_FULLWIDTH_OPENING = set("（《「『【〔〈")


@dataclass(frozen=True)
class _Text:
    x: float
    y: float  # baseline
    text: str
    size: float  # pt
    bold: bool


@dataclass(frozen=True)
class _Rect:
    x: float
    y: float
    w: float
    h: float
    fill: bool = False
    line: float = LINE_WIDTH


@dataclass(frozen=True)
class _Line:
    x1: float
    y1: float
    x2: float
    y2: float
    line: float = LINE_WIDTH


_Op = _Text | _Rect | _Line


@dataclass(frozen=True)
class _Token:
    text: str
    bold: bool
    width: float  # mm
    space: bool


class _Measure:
    """Text widths from the faces' advance widths, as fpdf2 computes them."""

    def __init__(self, faces: dict[bool, _Face]) -> None:
        self.faces = faces

    def clean(self, text: str, bold: bool) -> str:
        """Whitespace collapsed, characters the face lacks replaced."""
        cmap = self.faces[bold].cmap
        text = " ".join(text.split())
        return "".join(c if ord(c) in cmap else MISSING_GLYPH for c in text)

    def width(self, text: str, size: float, bold: bool) -> float:
        face = self.faces[bold]
        return sum(face.em(c) for c in text) * size * MM_PER_PT

    def tokens(self, runs: Sequence[tuple[str, bool]], size: float, limit: float) -> list[_Token]:
        out: list[_Token] = []
        for text, bold in runs:
            for match in _WORD.finditer(self.clean(text, bold)):
                piece = match.group()
                width = self.width(piece, size, bold)
                if len(piece) > 1 and not piece.isspace() and width > limit:
                    # a "word" longer than the line: by character
                    out.extend(_Token(c, bold, self.width(c, size, bold), False) for c in piece)
                else:
                    out.append(_Token(piece, bold, width, piece.isspace()))
        return out

    def wrap(
        self, runs: Sequence[tuple[str, bool]], size: float, width: float
    ) -> list[list[_Token]]:
        """Greedy lines: breaks between CJK characters, at spaces and around Latin words;
        a closing punctuation mark takes the character before it to the next line, an
        opening one goes there itself."""
        lines: list[list[_Token]] = []
        line: list[_Token] = []
        used = 0.0
        for token in self.tokens(runs, size, width):
            if token.space:
                if line and not line[-1].space:
                    line.append(token)
                    used += token.width
                continue
            if used + token.width <= width + 1e-6 or not line:
                line.append(token)
                used += token.width
                continue
            carry: list[_Token] = []
            while line and line[-1].space:
                line.pop()
            if token.text in _NO_LINE_START and len(line) > 1:
                carry.append(line.pop())
            while len(line) > 1 and line[-1].text in _NO_LINE_END:
                carry.insert(0, line.pop())
            lines.append(line)
            line = [*carry, token]
            used = sum(t.width for t in line)
        while line and line[-1].space:
            line.pop()
        if line:
            lines.append(line)
        return lines or [[]]


def _draw_line(tokens: Sequence[_Token], x: float, y: float, size: float) -> list[_Op]:
    """One wrapped line as text operations, one per run of the same weight."""
    ops: list[_Op] = []
    run: list[_Token] = []
    if tokens and tokens[0].text in _FULLWIDTH_OPENING:
        x -= size * MM_PER_PT / 2  # its blank left half hangs into the margin
    for token in [*tokens, None]:
        if run and (token is None or token.bold != run[0].bold):
            ops.append(_Text(x, y, "".join(t.text for t in run), size, run[0].bold))
            x += sum(t.width for t in run)
            run = []
        if token is not None:
            run.append(token)
    return ops


def _line_height(size: float) -> float:
    return size * MM_PER_PT * LEADING


def _baseline(top: float, size: float) -> float:
    """Baseline of a line whose box starts at `top`: the glyphs' em box centred in it."""
    em = size * MM_PER_PT
    return top + (_line_height(size) - em) / 2 + em * 0.88


class _FormLayout:
    """The pages of one form, as drawing operations; the running heads are added once the
    number of pages is known."""

    def __init__(self, form: PaperForm, measure: _Measure) -> None:
        self.form = form
        self.m = measure
        self.pages: list[list[_Op]] = []
        self.y = 0.0
        self.body_top = TOP + _line_height(HEAD_PT) + 3.0
        self.new_page()

    @property
    def ops(self) -> list[_Op]:
        return self.pages[-1]

    def new_page(self) -> None:
        self.pages.append([])
        self.y = self.body_top

    def room(self) -> float:
        return BOTTOM - self.y

    def ensure(self, height: float) -> None:
        if height > self.room() and self.y > self.body_top:
            self.new_page()

    def paragraph(
        self, runs: Sequence[tuple[str, bool]], size: float, x: float, width: float
    ) -> None:
        for line in self.m.wrap(runs, size, width):
            self.ensure(_line_height(size))
            self.ops.extend(_draw_line(line, x, _baseline(self.y, size), size))
            self.y += _line_height(size)

    # ------------------------------------------------------------ the parts of a form

    def build(self) -> list[list[_Op]]:
        self.header()
        self.instruction()
        self.fields()
        self.section("一、题目")
        for question in self.form.questions:
            self.question(question)
        self.grid()
        self.running_heads()
        return self.pages

    def running_heads(self) -> None:
        count = len(self.pages)
        code = self.m.clean(self.form.code, True)
        for number, page in enumerate(self.pages, start=1):
            base = _baseline(TOP, HEAD_PT)
            marker = f"第 {number} / {count} 页"
            page[:0] = [
                _Text(LEFT, base, f"表单编号：{code}", HEAD_PT, True),
                _Text(RIGHT - self.m.width(marker, HEAD_PT, True), base, marker, HEAD_PT, True),
                _Line(LEFT, TOP + _line_height(HEAD_PT), RIGHT, TOP + _line_height(HEAD_PT)),
            ]

    def header(self) -> None:
        form = self.form
        qr_x = RIGHT - QR_SIZE
        text_width = qr_x - LEFT - 8.0  # clear of the QR code's quiet zone
        top = self.y
        self.paragraph([(form.title, True)], TITLE_PT, LEFT, text_width)
        self.y += 1.0
        for label, value in (("类型", form.mode_label), ("乡镇", form.township_name)):
            self.paragraph([(f"{label}：{value}", False)], META_PT, LEFT, text_width)
        self.paragraph([(f"发放日期：{form.issued_on}", False)], META_PT, LEFT, text_width)
        # the code, large: label and code on one baseline
        code = self.m.clean(form.code, True)
        label = "表单编号："
        height = _line_height(CODE_PT)
        base = _baseline(self.y, CODE_PT)
        self.ops.append(_Text(LEFT, base, label, META_PT, True))
        self.ops.append(_Text(LEFT + self.m.width(label, META_PT, True), base, code, CODE_PT, True))
        self.y += height
        # 4 modules of quiet zone (~7 mm) around the symbol: below the head's rule too
        self.ops.extend(_qr(form.code, qr_x, top + 5.0, QR_SIZE))
        self.y = max(self.y, top + 5.0 + QR_SIZE + 4.0) + 3.0

    def instruction(self) -> None:
        pad = 3.0
        lines = self.m.wrap([(INSTRUCTION, True)], INSTRUCTION_PT, WIDTH - 2 * pad)
        height = len(lines) * _line_height(INSTRUCTION_PT) + 2 * pad
        self.ops.append(_Rect(LEFT, self.y, WIDTH, height, line=0.6))
        y = self.y + pad
        for line in lines:
            self.ops.extend(
                _draw_line(line, LEFT + pad, _baseline(y, INSTRUCTION_PT), INSTRUCTION_PT)
            )
            y += _line_height(INSTRUCTION_PT)
        self.y += height + 5.0

    def fields(self) -> None:
        row = CODE_BOX + 6.0
        # 居民编号 [][][][] - [][][][]
        label = "居民编号："
        base = self.y + CODE_BOX / 2 + FIELD_PT * MM_PER_PT * 0.36
        self.ops.append(_Text(LEFT, base, label, FIELD_PT, True))
        x = LEFT + self.m.width(label, FIELD_PT, True) + 2.0
        for group, size in enumerate(RESIDENT_CODE_GROUPS):
            if group:
                self.ops.append(
                    _Line(x + 1.5, self.y + CODE_BOX / 2, x + 5.5, self.y + CODE_BOX / 2, 0.6)
                )
                x += 7.0
            for _ in range(size):
                self.ops.append(_Rect(x, self.y, CODE_BOX, CODE_BOX, line=0.5))
                x += CODE_BOX + 1.5
        self.y += row
        # 协助人 ________    日期 ____年___月___日
        base = self.y + 9.0
        self.ops.append(_Text(LEFT, base, "协助人：", FIELD_PT, True))
        x = LEFT + self.m.width("协助人：", FIELD_PT, True)
        self.ops.append(_Line(x, base + 1.5, x + 48.0, base + 1.5))
        x += 54.0
        self.ops.append(_Text(x, base, "日期：", FIELD_PT, True))
        x += self.m.width("日期：", FIELD_PT, True)
        for blank, unit in ((22.0, "年"), (14.0, "月"), (14.0, "日")):
            self.ops.append(_Line(x, base + 1.5, x + blank, base + 1.5))
            x += blank + 0.5
            self.ops.append(_Text(x, base, unit, FIELD_PT, False))
            x += self.m.width(unit, FIELD_PT, False) + 1.0
        self.y += row + 2.0
        self.ops.append(_Line(LEFT, self.y, RIGHT, self.y, 0.6))
        self.y += 4.0

    def section(self, title: str, note: str | None = None, keep: float = 30.0) -> None:
        """A heading, on the page of the first `keep` mm of what follows it."""
        self.ensure(_line_height(SECTION_PT) + (_line_height(16) if note else 0) + 2.0 + keep)
        self.paragraph([(title, True)], SECTION_PT, LEFT, WIDTH)
        if note:
            self.paragraph([(note, False)], 16, LEFT, WIDTH)
        self.y += 2.0

    def question(self, question: PaperQuestion) -> None:
        """A question's lines, kept on one page when they fit on one."""
        stem_runs = [("（多选）", True)] if question.multiple else []
        stem_runs.append((question.stem, False))
        stem = self.m.wrap(stem_runs, STEM_PT, WIDTH - QUESTION_INDENT)
        option_x = LEFT + QUESTION_INDENT
        options = [
            (key, self.m.wrap([(text, False)], OPTION_PT, WIDTH - QUESTION_INDENT - OPTION_INDENT))
            for key, text in question.options
        ]
        height = len(stem) * _line_height(STEM_PT) + sum(
            len(lines) * _line_height(OPTION_PT) for _key, lines in options
        )
        if height <= BOTTOM - self.body_top:
            self.ensure(height)
        for index, line in enumerate(stem):
            self.ensure(_line_height(STEM_PT))
            base = _baseline(self.y, STEM_PT)
            if index == 0:
                self.ops.append(_Text(LEFT, base, f"{question.number}.", STEM_PT, True))
            self.ops.extend(_draw_line(line, LEFT + QUESTION_INDENT, base, STEM_PT))
            self.y += _line_height(STEM_PT)
        for key, lines in options:
            for index, line in enumerate(lines):
                self.ensure(_line_height(OPTION_PT))
                base = _baseline(self.y, OPTION_PT)
                if index == 0:
                    self.ops.append(_Text(option_x, base, f"{key}.", OPTION_PT, True))
                self.ops.extend(_draw_line(line, option_x + OPTION_INDENT, base, OPTION_PT))
                self.y += _line_height(OPTION_PT)
        self.y += QUESTION_GAP

    def grid(self) -> None:
        """Question number × option letter, a box where the question has that option; two
        tables side by side (1–15 left, 16–30 right), continued on the next page if needed."""
        questions = list(self.form.questions)
        if not questions:
            return
        letters = SHOWN_KEYS[: max(2, max(len(q.options) for q in questions))]
        columns = 2 if len(questions) > 5 else 1
        gap = 8.0
        table_width = (WIDTH - gap) / 2
        number_width = 26.0
        cell = (table_width - number_width) / len(letters)
        header, row = 11.0, 12.0
        whole = header + math.ceil(len(questions) / columns) * row
        heading = _line_height(SECTION_PT) + _line_height(16) + 2.0
        # the whole grid on one page where it fits on one, else at least 3 rows with the heading
        keep = whole if heading + whole <= BOTTOM - self.body_top else header + 3 * row
        self.section("二、答题格", "在所选选项下面的方框里打“✓”。", keep)
        while questions:
            rows = int((self.room() - header) // row)
            if rows < 3:
                self.new_page()
                continue
            rows = min(rows, math.ceil(len(questions) / columns))
            chunk, questions = questions[: rows * columns], questions[rows * columns :]
            for column in range(columns):
                part = chunk[column * rows : (column + 1) * rows]
                if part:
                    x = LEFT + column * (table_width + gap)
                    self.table(part, letters, x, number_width, cell, header, row)
            self.y += header + rows * row + 6.0

    def table(
        self,
        questions: list[PaperQuestion],
        letters: str,
        x: float,
        number_width: float,
        cell: float,
        header: float,
        row: float,
    ) -> None:
        ops, y = self.ops, self.y
        base = y + header / 2 + GRID_PT * MM_PER_PT * 0.36
        ops.append(_Rect(x, y, number_width, header))
        self.centred("题号", x, number_width, base, GRID_PT, True)
        for index, letter in enumerate(letters):
            cx = x + number_width + index * cell
            ops.append(_Rect(cx, y, cell, header))
            self.centred(letter, cx, cell, base, GRID_PT, True)
        y += header
        for question in questions:
            base = y + row / 2 + GRID_PT * MM_PER_PT * 0.36
            ops.append(_Rect(x, y, number_width, row))
            number = str(question.number)
            ops.append(_Text(x + 2.5, base, number, GRID_PT, True))
            if question.multiple:
                tag_x = x + 2.5 + self.m.width(number, GRID_PT, True) + 1.5
                ops.append(_Text(tag_x, base, "多选", GRID_TAG_PT, False))
            for index in range(len(letters)):
                cx = x + number_width + index * cell
                ops.append(_Rect(cx, y, cell, row))
                if index < len(question.options):
                    box = min(BOX, cell - 2.0)
                    ops.append(
                        _Rect(cx + (cell - box) / 2, y + (row - box) / 2, box, box, line=0.5)
                    )
            y += row

    def centred(
        self, text: str, x: float, width: float, base: float, size: float, bold: bool
    ) -> None:
        self.ops.append(
            _Text(x + (width - self.m.width(text, size, bold)) / 2, base, text, size, bold)
        )


def _qr(code: str, x: float, y: float, size: float) -> list[_Op]:
    """The code as a QR symbol of `size` mm (quiet zone outside it), dark modules as filled
    rectangles, one per horizontal run."""
    matrix = segno.make_qr(code, error="m").matrix
    module = size / len(matrix)
    ops: list[_Op] = []
    for r, line in enumerate(matrix):
        c = 0
        while c < len(line):
            if line[c]:
                start = c
                while c < len(line) and line[c]:
                    c += 1
                ops.append(
                    _Rect(x + start * module, y + r * module, (c - start) * module, module, True, 0)
                )
            else:
                c += 1
    return ops


# ---------------------------------------------------------------- rendering


def _check(form: PaperForm) -> None:
    for question in form.questions:
        keys = "".join(key for key, _text in question.options)
        if not 1 <= len(keys) <= len(SHOWN_KEYS) or keys != SHOWN_KEYS[: len(keys)]:
            raise ValueError(
                f"form {form.code}, question {question.number}: options must be shown as "
                f"A, B, … in order (at most {len(SHOWN_KEYS)}), got {keys!r}"
            )


def _creation_date(forms: Sequence[PaperForm]) -> datetime:
    try:
        day = date.fromisoformat(forms[0].issued_on)
    except (IndexError, ValueError):
        day = date(2000, 1, 1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def render_forms(forms: Sequence[PaperForm]) -> bytes:
    """One PDF of the forms, each starting on a new page."""
    for form in forms:
        _check(form)
    with _FACES_LOCK:
        faces = _faces()
        measure = _Measure(faces)
        pages = [page for form in forms for page in _FormLayout(form, measure).build()]
        used: dict[bool, set[str]] = {False: {" "}, True: {" "}}
        for page in pages:
            for op in page:
                if isinstance(op, _Text):
                    used[op.bold].update(op.text)
        fonts = {bold: faces[bold].truetype(chars) for bold, chars in used.items()}
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(LEFT, TOP, PAGE_WIDTH - RIGHT)
    pdf.set_creation_date(_creation_date(forms))
    pdf.set_title("纸质答卷")
    pdf.set_creator("science-literacy")
    pdf.set_lang("zh-CN")
    with tempfile.TemporaryDirectory(prefix="paper-forms-") as folder:
        for bold, data in fonts.items():
            path = Path(folder) / ("bold.ttf" if bold else "regular.ttf")
            path.write_bytes(data)
            pdf.add_font(FAMILY, "B" if bold else "", path)
        pdf.set_draw_color(0)
        pdf.set_fill_color(0)
        pdf.set_text_color(0)
        for page in pages or [[]]:
            pdf.add_page()
            _replay(pdf, page)
        return bytes(pdf.output())


def _replay(pdf: FPDF, ops: Sequence[_Op]) -> None:
    font: tuple[bool, float] | None = None
    width: float | None = None
    for op in ops:
        if isinstance(op, _Text):
            if font != (op.bold, op.size):
                font = (op.bold, op.size)
                pdf.set_font(FAMILY, "B" if op.bold else "", op.size)
            pdf.text(op.x, op.y, op.text)
        elif isinstance(op, _Rect):
            if op.fill:
                pdf.rect(op.x, op.y, op.w, op.h, style="F")
            else:
                if width != op.line:
                    width = op.line
                    pdf.set_line_width(op.line)
                pdf.rect(op.x, op.y, op.w, op.h)
        else:
            if width != op.line:
                width = op.line
                pdf.set_line_width(op.line)
            pdf.line(op.x1, op.y1, op.x2, op.y2)
