"""Variable expansion and word splitting with Docker's shell-lexer rules.

Most rows come from moby/buildkit's own lexer tests (lex_test.go, envVarTest,
wordsTest), so the two lexers agree on them."""

from __future__ import annotations

import pytest

from engine.build.dockerfile import EXPANDING, ExpansionError, expand, expand_words
from engine.build.dockerfile_heredoc import parse_heredoc_word

ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("hello", "hello"),
        ("he'll'o", "hello"),
        ("he'llo", None),
        ("he\\'llo", "he'llo"),
        ("he\\\\'llo", None),
        ("abc\\'def", "abc'def"),
        ('"abc\\\'def"', "abc\\'def"),
        ("\\'abc\\'", "'abc'"),
        ('"hello"', "hello"),
        ('"hello\\"there"', 'hello"there'),
        ("'hello'", "hello"),
        ("'hello\\'", "hello\\"),
        ('"\\\\"', "\\"),
        ('"a\\b"', "a\\b"),
        ('"a\\$b"', "a$b"),
        ("\\$PWD", "$PWD"),
        ('"\\$PWD"', "$PWD"),
        ("'$PWD'", "$PWD"),
        ("$PWD", "/home"),
        ("${PWD}", "/home"),
        ('"$PWD"', "/home"),
        ("${PWD}/x", "/home/x"),
        ("$PWD/x", "/home/x"),
        ("${KOREAN}", "한국어"),
        ("$NOSUCH", ""),
        ("${NOSUCH}x", "x"),
        ("$", "$"),
        ("a$ b", "a$ b"),
        ("$1x", "x"),
        ("$@x", "x"),
        ("${PWD:-x}", "/home"),
        ("${NOSUCH:-x y}", "x y"),
        ("${NULL:-default}", "default"),
        ("${NULL-default}", ""),
        ("${NOSUCH-default}", "default"),
        ("${PWD:+alt}", "alt"),
        ("${NULL:+alt}", ""),
        ("${NULL+alt}", "alt"),
        ("${NOSUCH+alt}", ""),
        ("${NOSUCH:-$PWD}", "/home"),
        ("${NOSUCH:-${SHELL:-x}}", "bash"),
        ("${NOSUCH:-'$PWD'}", "$PWD"),
        ("${NOSUCH:-a\\}b}", "a}b"),
        ("${PWD:?oops}", "/home"),
        ("${NULL?}", ""),
        ("${", None),
        ("${}", None),
        ("${:x}", None),
        ("${{x}", None),
        ("${PWD", None),
        ("${PWD:-x", None),
        ("${NOSUCH?}", None),
        ("${NULL:?}", None),
        ("${PWD=x}", None),
        ("${PWD:=x}", None),
        ("x\\", "x"),
        ('"unterminated', None),
    ],
)
def test_expand(word: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(ExpansionError):
            expand(word, ENV)
    else:
        assert expand(word, ENV) == expected


@pytest.mark.parametrize(
    ("word", "env", "expected"),
    [
        ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx  ccc"),
        ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx bbb ccc"),
        ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa bbb "),
        ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa  "),
        ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", {"FOO": "()[]{}^$.*?|\\x"}, "x"),
        ("${FOO%%\\**}", {"FOO": "xx**"}, "xx"),
        ("${FOO#*x*y}", {"FOO": "xxyy"}, "y"),
        ("${FOO#*}", {"FOO": "xxyy"}, "xxyy"),
        ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy"),
        ("${FOO#}", {"FOO": "xxyy"}, "xxyy"),
        ("${FOO##*x}", {"FOO": "xxyy"}, "yy"),
        ("${FOO#?\\?}", {"FOO": "???y"}, "?y"),
        ("${ABC:-.}${FOO%x}${ABC:-.}", {"FOO": "xxyy"}, ".xxyy."),
        ("${FOO%%\\**\\*}", {"FOO": "a***yy*"}, "a"),
        ("${FOO%y*}", {"FOO": "xxyy"}, "xxy"),
        ("${FOO%%y*}", {"FOO": "xxyy"}, "xx"),
        (
            "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
            {"FOO": "/foo*/*/*.txt", "NEEDLE": "\\*/"},
            "/foo.*/*.txt - /foo..*.txt",
        ),
        (
            "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
            {"FOO": "/tmp/tmp/bar.txt", "NEEDLE": "/tmp"},
            "/tmp/bar.txt - /bar.txt",
        ),
        (
            "${FOO/$N/$R} - ${FOO//$N/$R}",
            {"FOO": "/a/foo/b/c.txt", "N": "/?/", "R": "/"},
            "/foo/b/c.txt - /foo/c.txt",
        ),
        ("${FOO//\\//\\/}", {"FOO": "/tmp/foo.txt"}, "\\/tmp\\/foo.txt"),
        ("${FOO/$BAR/ww}", {"FOO": "xxyy", "BAR": ""}, "wwxxyy"),
        ("${FOO///}", {"FOO": "xxyy"}, "xxyy"),
        ("${FOO///}", {}, ""),
        ("v${V}${T:+-${T}}.tgz", {"V": "1", "T": "v7"}, "v1-v7.tgz"),
    ],
)
def test_expand_modifiers(word: str, env: dict[str, str], expected: str) -> None:
    assert expand(word, env) == expected


@pytest.mark.parametrize(
    "word", ["${FOO=aaa}", "${FOO=:aaa}", "${FOO//ww}", "${FOO//}", "${FOO#\\x}"]
)
def test_expand_modifier_errors(word: str) -> None:
    with pytest.raises(ExpansionError, match="failed to process"):
        expand(word, {"FOO": "xxyy"})


def test_required_variable_messages() -> None:
    with pytest.raises(ExpansionError, match="VAR: message herex"):
        expand("${VAR:?message here$ARG}", {"VAR": "", "ARG": "x"})
    with pytest.raises(ExpansionError, match="VAR: is not allowed to be unset"):
        expand("${VAR?}", {})
    with pytest.raises(ExpansionError, match="VAR: is not allowed to be empty"):
        expand("${VAR:?}", {"VAR": ""})
    assert expand("${VAR?message}", {"VAR": ""}) == ""


def test_backtick_escape() -> None:
    assert expand("c:\\dir\\`$PWD", ENV, "`") == "c:\\dir\\$PWD"
    assert expand('"a`"b"', ENV, "`") == 'a"b'
    assert expand("\\$PWD", ENV, "`") == "\\/home"


def test_skip_unset_keeps_unknown_variables() -> None:
    env = {"A": "a"}
    assert (
        expand("$A $B ${C} ${D:-x} ${E/x/y}", env, skip_unset=True) == "a $B ${C} ${D:-x} ${E/x/y}"
    )


WORDS_ENV = {"hi": "hi", "space": "abc  def", "leading": "  ab c"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("hello", ["hello"]),
        ("hello${hi}bye", ["hellohibye"]),
        ("hello${space}bye", ["helloabc", "defbye"]),
        ('hello"${space}"bye', ["helloabc  defbye"]),
        ('hello "${space}"bye', ["hello", "abc  defbye"]),
        ("hello${leading}def", ["hello", "ab", "cdef"]),
        ('hello"${leading}" def', ["hello  ab c", "def"]),
        ('hello"${leading}"', ["hello  ab c"]),
        ("hello${leading}", ["hello", "ab", "c"]),
        ("$hi$hi", ["hihi"]),
        ("'a b' c", ["a b", "c"]),
        ("a\\ b c", ["a b", "c"]),
        ("  spaced   out  ", ["spaced", "out"]),
        ("", []),
        ('""', []),
        ("x ''", ["x"]),
    ],
)
def test_expand_words(word: str, expected: list[str]) -> None:
    assert expand_words(word, WORDS_ENV) == expected


def test_expanding_instructions() -> None:
    assert {"ADD", "COPY", "ENV", "WORKDIR", "FROM", "ARG"} <= EXPANDING
    assert not {"RUN", "CMD", "ENTRYPOINT", "SHELL", "HEALTHCHECK"} & EXPANDING


@pytest.mark.parametrize(
    ("word", "name", "expand_body", "chomp", "fd"),
    [
        ("<<EOF", "EOF", True, False, 0),
        ("<<-EOF", "EOF", True, True, 0),
        ('<<"EOF"', "EOF", False, False, 0),
        ("<<'EOF'", "EOF", False, False, 0),
        ('<<E"O"F', "EOF", False, False, 0),
        ("2<<EOF", "EOF", True, False, 2),
        ("<<", None, True, False, 0),
        ("<<<EOF", None, True, False, 0),
        ("<<a b", None, True, False, 0),
        ("x<<EOF", None, True, False, 0),
    ],
)
def test_heredoc_words(
    word: str, name: str | None, expand_body: bool, chomp: bool, fd: int
) -> None:
    doc = parse_heredoc_word(word)
    if name is None:
        assert doc is None
    else:
        assert doc is not None
        assert (doc.name, doc.expand, doc.chomp, doc.fd) == (name, expand_body, chomp, fd)
