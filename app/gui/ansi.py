"""ANSI escapes in log lines: the colours kept as spans, every other escape removed.

Why we parse instead of handing the text to a rich-text widget: the logs view paints plain
strings from a model (100,000 lines must not become 100,000 HTML documents), so a line is
reduced once, on the stream's thread, to its visible text plus a few colour spans that the
delegate paints. Kept: SGR 30-37 and 90-97 (foreground), 39 (default foreground), 1 (bold),
22 (normal intensity), 0 or nothing (reset). Everything else (cursor moves, erase, OSC titles,
backgrounds, 256-colour and true-colour selections) is dropped, without its parameters
leaking into the colours. The state carries over from one line to the next, as a terminal's.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# CSI (ESC [ params final), OSC (ESC ] ... BEL or ESC \), any other ESC (intermediates) final.
_ESCAPE = re.compile(
    r"\x1b\[(?P<params>[0-?]*)[ -/]*(?P<final>[@-~])"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[ -/]*[0-~]?"
)
# Other control characters a log line should not carry into the view (tabs are expanded).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


TAB = 8


class Style(NamedTuple):
    """The pen for a run of text: colour index 0-15 (8-15 bright) or None, and weight."""

    colour: int | None = None
    bold: bool = False


PLAIN = Style()


# A run of `length` characters from `start` in colour 0-15 (-1: the default pen), bold or
# not; only runs that differ from plain text are kept. A plain tuple of ints on purpose: the
# logs model holds 200,000 lines, and exact tuples of atoms are untracked by Python's cyclic
# garbage collector, so holding them costs no collection time (a NamedTuple would).
Span = tuple[int, int, int, bool]


def span(start: int, length: int, style: Style) -> Span:
    return (start, length, -1 if style.colour is None else style.colour, style.bold)


class Line(NamedTuple):
    text: str
    spans: tuple[Span, ...]


def parse(raw: str, style: Style = PLAIN) -> tuple[Line, Style]:
    """The visible text and colour spans of one line, and the style in force at its end."""
    if "\x1b" not in raw:
        text = _CONTROLS.sub("", raw).expandtabs(TAB)
        whole = (span(0, len(text), style),) if style != PLAIN and text else ()
        return Line(text, whole), style
    parts: list[str] = []
    spans: list[Span] = []
    pos = length = 0
    for m in _ESCAPE.finditer(raw):
        length = _emit(raw[pos : m.start()], style, parts, spans, length)
        if m.group("final") == "m":
            style = apply_sgr(m.group("params"), style)
        pos = m.end()
    _emit(raw[pos:], style, parts, spans, length)
    return Line("".join(parts), tuple(spans)), style


def _emit(chunk: str, style: Style, parts: list[str], spans: list[Span], at: int) -> int:
    chunk = _CONTROLS.sub("", chunk)
    if "\t" in chunk:  # expand at the column it starts in, so spans stay aligned
        chunk = (" " * (at % TAB) + chunk).expandtabs(TAB)[at % TAB :]
    if not chunk:
        return at
    parts.append(chunk)
    if style != PLAIN:
        last = spans[-1] if spans else None
        if last is not None and last[2:] == span(0, 0, style)[2:] and last[0] + last[1] == at:
            spans[-1] = span(last[0], last[1] + len(chunk), style)
        else:
            spans.append(span(at, len(chunk), style))
    return at + len(chunk)


def apply_sgr(params: str, style: Style) -> Style:
    """The style after one `ESC [ params m`; unknown codes leave it as it was."""
    if not params:
        return PLAIN
    if not all(c.isdigit() or c == ";" for c in params):
        return style  # private or colon forms (ESC[?..m, 38:5:n): not ours to guess
    codes = [int(c) if c else 0 for c in params.split(";")]
    colour, bold = style
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            colour, bold = None, False
        elif code == 1:
            bold = True
        elif code == 22:
            bold = False
        elif 30 <= code <= 37:
            colour = code - 30
        elif 90 <= code <= 97:
            colour = code - 90 + 8
        elif code == 39:
            colour = None
        elif code in (38, 48, 58):
            i += _extended_length(codes, i)  # skip 5;n or 2;r;g;b, not read as colours
        i += 1
    return Style(colour, bold)


def _extended_length(codes: list[int], i: int) -> int:
    kind = codes[i + 1] if i + 1 < len(codes) else None
    return {5: 2, 2: 4}.get(kind, 0) if kind is not None else 0


def visible(raw: str) -> str:
    """The visible text only (copying and saving a selection)."""
    return parse(raw)[0].text
