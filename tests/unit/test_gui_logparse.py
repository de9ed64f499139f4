"""The logs view's pure parts: ANSI reduction, log frame parsing, chunked-body decoding."""

from __future__ import annotations

import struct

import pytest

from app.gui import ansi
from app.gui.logparse import STDERR, STDOUT, Batch, LogEntry, LogParser
from app.gui.workers.body import BadChunk, ChunkDecoder

TS = b"2026-11-29T05:00:00.123456789Z"


def parsed(*batches: Batch) -> list[LogEntry]:
    return [e for b in batches for e in b.entries()]


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(data)) + data


# -- ansi ------------------------------------------------------------------------------


def test_plain_text_passes_through_without_spans() -> None:
    line, style = ansi.parse("hello world")
    assert line == ansi.Line("hello world", ())
    assert style == ansi.PLAIN


def test_colours_bold_and_reset_become_spans() -> None:
    line, _ = ansi.parse("\x1b[31mred\x1b[0m plain \x1b[1;92mbold green\x1b[39m bold\x1b[22m x")
    assert line.text == "red plain bold green bold x"
    assert line.spans == ((0, 3, 1, False), (10, 10, 10, True), (20, 5, -1, True))


def test_other_escapes_are_removed_without_touching_colours() -> None:
    raw = "\x1b[2K\x1b[1A\x1b]0;title\x07\x1b[44mbg\x1b[38;5;31m256\x1b[38;2;1;2;3mrgb\x1b(Bend"
    line, style = ansi.parse(raw)
    assert line.text == "bg256rgbend"
    assert line.spans == ()  # backgrounds and 256/true colours are not read as 30-37
    assert style == ansi.PLAIN


def test_empty_sgr_resets_and_style_carries_to_the_next_line() -> None:
    _, style = ansi.parse("\x1b[33mstart")
    line, style = ansi.parse("still yellow", style)
    assert line.spans == ((0, 12, 3, False),)
    line, style = ansi.parse("\x1b[mplain", style)
    assert line.spans == () and style == ansi.PLAIN


def test_tabs_are_expanded_and_controls_dropped() -> None:
    line, _ = ansi.parse("a\tb\x1b[31mcc\td\x1b[0m\x07\x00")
    assert line.text == "a       bcc     d"
    assert line.spans == ((9, 8, 1, False),)


def test_a_torn_escape_at_the_end_is_dropped() -> None:
    assert ansi.visible("text\x1b[3") == "text3"  # an unfinished CSI: ESC [ goes
    assert ansi.visible("text\x1b") == "text"


# -- log frames ------------------------------------------------------------------------


def test_multiplexed_frames_split_anywhere() -> None:
    wire = frame(1, TS + b" out one\n") + frame(2, TS + b" err one\n") + frame(1, TS + b" two\n")
    for cut in range(1, len(wire)):
        parser = LogParser(tty=False)
        got = parsed(parser.feed(wire[:cut]), parser.feed(wire[cut:]), parser.finish())
        assert [(e.stream, e.line.text) for e in got] == [
            (STDOUT, "out one"),
            (STDERR, "err one"),
            (STDOUT, "two"),
        ], cut
        assert {e.time for e in got} == {TS.decode()}


def test_a_line_split_across_records_is_joined_with_its_first_timestamp() -> None:
    parser = LogParser(tty=False)
    first = b"2026-11-29T05:00:00.000000001Z"
    assert len(parser.feed(frame(1, first + b" par"))) == 0
    got = parsed(parser.feed(frame(1, TS + b" tial\n")))
    assert [(e.time, e.line.text) for e in got] == [(first.decode(), "partial")]


def test_utf8_split_across_frames_stays_whole_and_crlf_is_trimmed() -> None:
    parser = LogParser(tty=False)
    text = "héllo ✓\r\n".encode()
    got = parsed(parser.feed(frame(1, TS + b" " + text[:2])), parser.feed(frame(1, text[2:])))
    assert [e.line.text for e in got] == ["héllo ✓"]


def test_tty_stream_is_raw_and_a_last_line_without_newline_comes_at_finish() -> None:
    parser = LogParser(tty=True)
    got = parsed(parser.feed(TS + b" \x1b[32mgreen\x1b[0m\n" + TS + b" tail"))
    assert [(e.stream, e.line.text, e.line.spans) for e in got] == [
        (STDOUT, "green", ((0, 5, 2, False),))
    ]
    assert parser.finish().texts == ["tail"]


def test_without_timestamps_the_text_is_kept_whole() -> None:
    parser = LogParser(tty=False, timestamps=False)
    got = parsed(parser.feed(frame(1, b"2026 is not a timestamp\n")))
    assert [(e.time, e.line.text) for e in got] == [("", "2026 is not a timestamp")]


# -- chunked bodies --------------------------------------------------------------------


def chunked(*parts: bytes) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    return body + b"0\r\n\r\n"


def test_chunk_decoder_over_every_split() -> None:
    wire = chunked(b"hello ", b"chunked", b" world" * 20)[:-5] + b"0;ext=1\r\n\r\n"
    for cut in range(len(wire)):
        dec = ChunkDecoder()
        assert dec.feed(wire[:cut]) + dec.feed(wire[cut:]) == b"hello chunked" + b" world" * 20
        assert dec.done


def test_chunk_decoder_stops_at_the_last_chunk() -> None:
    dec = ChunkDecoder()
    assert dec.feed(b"3\r\nabc\r\n") == b"abc"
    assert not dec.done
    assert dec.feed(b"0\r\n\r\n") == b""
    assert dec.done


def test_chunk_decoder_rejects_a_bad_size() -> None:
    with pytest.raises(BadChunk, match="bad chunk size"):
        ChunkDecoder().feed(b"zz\r\nabc\r\n")


def test_fast_and_general_paths_agree() -> None:
    """Plain one-line records take the fast path; colour carried over, a stream's open line,
    tabs, CR and several lines in one record take the general one; the results agree."""
    records = [
        (1, TS + b" plain\n"),
        (2, TS + b" \x1b[31mred starts\n"),
        (2, TS + b" still red\n"),  # colour carried: general path
        (2, TS + b" \x1b[0mreset\n"),
        (1, TS + b" tab\there\r\n"),
        (1, TS + b" two\nlines\n"),
        (1, TS + b" open"),
        (1, TS + b" ed\n"),
        (1, b"no timestamp here\n"),
        (2, TS + b" \xff bad utf-8\n"),
    ]
    wire = b"".join(frame(s, r) for s, r in records)
    got = parsed(LogParser(tty=False).feed(wire))
    assert [(e.stream, e.line.text) for e in got] == [
        (STDOUT, "plain"),
        (STDERR, "red starts"),
        (STDERR, "still red"),
        (STDERR, "reset"),
        (STDOUT, "tab     here"),
        (STDOUT, "two"),
        (STDOUT, "lines"),
        (STDOUT, "opened"),
        (STDOUT, "no timestamp here"),
        (STDERR, "\ufffd bad utf-8"),
    ]
    assert [e.line.spans for e in got][1:4] == [((0, 10, 1, False),), ((0, 9, 1, False),), ()]
    assert got[8].time == "" and got[0].time == TS.decode()
