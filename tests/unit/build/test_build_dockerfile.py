"""The Dockerfile parser: every instruction in both forms, continuations, directives,
heredocs, stages, and every syntax error with the line it names."""

from __future__ import annotations

import pytest

from engine.build import dockerfile
from engine.build.dockerfile import DockerfileSyntaxError, Instruction, healthcheck_test, parse
from engine.errors import InvalidParameter


def one(body: str) -> Instruction:
    """The single instruction after `FROM scratch`."""
    df = parse("FROM scratch\n" + body + "\n")
    assert len(df.stages) == 1 and len(df.stages[0].instructions) == 1
    return df.stages[0].instructions[0]


# -- instructions and their argument forms -------------------------------------------------


@pytest.mark.parametrize(
    ("line", "cmd", "args", "json_form"),
    [
        ("RUN echo hi && echo there", "RUN", ["echo hi && echo there"], False),
        ('RUN ["echo", "hi"]', "RUN", ["echo", "hi"], True),
        ('RUN [ "sh" , "-c","x" ]', "RUN", ["sh", "-c", "x"], True),
        ("RUN [not json", "RUN", ["[not json"], False),
        ('RUN ["a"] trailing', "RUN", ['["a"] trailing'], False),
        ("run lower case keyword", "RUN", ["lower case keyword"], False),
        ('CMD ["sh", "-c", "echo $HOME"]', "CMD", ["sh", "-c", "echo $HOME"], True),
        ("CMD echo $HOME", "CMD", ["echo $HOME"], False),
        ("CMD []", "CMD", [], True),
        ("CMD", "CMD", [], False),
        ('ENTRYPOINT ["/bin/app", "--flag"]', "ENTRYPOINT", ["/bin/app", "--flag"], True),
        ("ENTRYPOINT exec app", "ENTRYPOINT", ["exec app"], False),
        ('SHELL ["/bin/sh", "-ec"]', "SHELL", ["/bin/sh", "-ec"], True),
        ("COPY a b /dst/", "COPY", ["a", "b", "/dst/"], False),
        ('COPY ["a b", "/d st/"]', "COPY", ["a b", "/d st/"], True),
        (
            "ADD https://example.invalid/x.tgz /x",
            "ADD",
            ["https://example.invalid/x.tgz", "/x"],
            False,
        ),
        ("VOLUME /data /logs", "VOLUME", ["/data", "/logs"], False),
        ('VOLUME ["/data", " /logs "]', "VOLUME", ["/data", "/logs"], True),
        ("EXPOSE 80 443/tcp 53/udp", "EXPOSE", ["80", "443/tcp", "53/udp"], False),
        ("WORKDIR /app/$SUB", "WORKDIR", ["/app/$SUB"], False),
        ("USER 1000:1000", "USER", ["1000:1000"], False),
        ("USER app group", "USER", ["app group"], False),
        ("STOPSIGNAL SIGTERM", "STOPSIGNAL", ["SIGTERM"], False),
        (
            "MAINTAINER Jane Doe <jane@example.invalid>",
            "MAINTAINER",
            ["Jane Doe <jane@example.invalid>"],
            False,
        ),
        ("ARG VERSION", "ARG", ["VERSION"], False),
        ('ARG A=1 B C="x y"', "ARG", ["A=1", "B", 'C="x y"'], False),
    ],
)
def test_instruction_forms(line: str, cmd: str, args: list[str], json_form: bool) -> None:
    ins = one(line)
    assert (ins.cmd, ins.args, ins.json_form) == (cmd, args, json_form)
    assert ins.original == line and ins.line == 2


@pytest.mark.parametrize(
    ("line", "pairs"),
    [
        ("ENV A=1", [("A", "1")]),
        ("ENV A=1 B=\"two words\" C='$lit'", [("A", "1"), ("B", '"two words"'), ("C", "'$lit'")]),
        ("ENV A=a\\ b D=", [("A", "a\\ b"), ("D", "")]),
        ("ENV LEGACY value with  spaces", [("LEGACY", "value with  spaces")]),
        ('ENV LEGACY "quoted"', [("LEGACY", '"quoted"')]),
        ('LABEL "com.example.key"="v 1" other=2', [('"com.example.key"', '"v 1"'), ("other", "2")]),
        ("LABEL legacy form", [("legacy", "form")]),
        ("ARG A=1 B", [("A", "1"), ("B", None)]),
        ("ARG EMPTY=", [("EMPTY", "")]),
    ],
)
def test_key_value_forms_keep_raw_values(line: str, pairs: list[tuple[str, str | None]]) -> None:
    assert one(line).pairs == pairs


def test_values_are_expanded_and_unquoted_later() -> None:
    ins = one("ENV B=\"two $X\" C='$X' D=a\\ b")
    env = {"X": "x"}
    assert [dockerfile.expand(v, env) for _, v in ins.pairs] == ["two x", "$X", "a b"]


def test_healthcheck_forms() -> None:
    ins = one("HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/ || exit 1")
    assert ins.args == ["CMD", "curl -f http://localhost/ || exit 1"] and not ins.json_form
    assert ins.flags == {"interval": "5s", "retries": "3"}
    assert healthcheck_test(ins) == ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]
    ins = one('HEALTHCHECK --timeout=1m30s --start-period=1.5s --start-interval=0 CMD ["true"]')
    assert healthcheck_test(ins) == ["CMD", "true"] and ins.json_form
    assert healthcheck_test(one("HEALTHCHECK none")) == ["NONE"]
    assert healthcheck_test(one("healthcheck cmd true")) == ["CMD-SHELL", "true"]


def test_onbuild_parses_its_trigger() -> None:
    ins = one("ONBUILD COPY --chown=1:2 . /src")
    assert ins.args == ["COPY --chown=1:2 . /src"]
    assert ins.trigger is not None and ins.trigger.cmd == "COPY"
    assert ins.trigger.flags == {"chown": "1:2"} and ins.trigger.args == [".", "/src"]
    assert one("onbuild   run echo hi").args == ["run echo hi"]


@pytest.mark.parametrize(
    ("line", "flags"),
    [
        (
            "COPY --from=build --chown=app:app --chmod=0755 --link a /b",
            {"from": "build", "chown": "app:app", "chmod": "0755", "link": "true"},
        ),
        ("COPY --link=false a /b", {"link": "false"}),
        ('COPY --from="my stage" a /b', {"from": "my stage"}),
        ("COPY --chown= a /b", {"chown": ""}),
        (
            "ADD --checksum=sha256:abc --keep-git-dir https://x.invalid/r.git /r",
            {"checksum": "sha256:abc", "keep-git-dir": "true"},
        ),
        ("COPY -- --notaflag /b", {}),
    ],
)
def test_flags(line: str, flags: dict[str, str]) -> None:
    assert one(line).flags == flags


def test_copy_flag_end_marker_keeps_the_rest() -> None:
    assert one("COPY -- --notaflag /b").args == ["--notaflag", "/b"]


# -- stages ---------------------------------------------------------------------------------


def test_stages_meta_args_and_lookup() -> None:
    df = parse(
        "ARG BASE=busybox\n"
        "ARG TAG\n"
        "FROM --platform=$BUILDPLATFORM ${BASE}:${TAG:-latest} AS Builder\n"
        "RUN make\n"
        "FROM builder as second\n"
        "COPY --from=builder /out /out\n"
        "FROM scratch\n"
    )
    assert [a.args for a in df.meta_args] == [["BASE=busybox"], ["TAG"]]
    assert [(s.index, s.name, s.base, s.platform) for s in df.stages] == [
        (0, "builder", "${BASE}:${TAG:-latest}", "$BUILDPLATFORM"),
        (1, "second", "builder", ""),
        (2, "", "scratch", ""),
    ]
    assert [i.cmd for i in df.stages[0].instructions] == ["RUN"]
    assert df.stages[0].from_instruction.line == 3
    assert df.stage("BUILDER") is df.stages[0] and df.stage("2") is df.stages[2]
    assert df.stage("nope") is None and df.stage("3") is None
    assert [i.line for i in df.instructions()] == [1, 2, 3, 4, 5, 6, 7]


# -- lines, continuations, comments, directives ---------------------------------------------


def test_continuations_comments_and_blank_lines() -> None:
    text = (
        "# a comment\n"
        "\n"
        "FROM scratch\n"
        "   # an indented comment\n"
        "RUN echo a \\\n"
        "  # a comment inside the continuation is skipped\n"
        "    && echo b \\  \n"
        "\n"
        "    && echo c\n"
        "  ENV A=1\n"
        "RUN echo done\\\\\n"
        "RUN \\\n"
        "echo last\n"
    )
    df = parse(text)
    ins = df.stages[0].instructions
    assert ins[0].original == "RUN echo a     && echo b     && echo c"
    assert (ins[0].line, ins[0].end_line) == (5, 9)
    assert ins[1].original == "ENV A=1" and ins[1].line == 10
    assert ins[2].args == ["echo done\\\\"] and ins[2].line == 11
    assert ins[3].args == ["echo last"] and (ins[3].line, ins[3].end_line) == (12, 13)
    assert len(df.warnings) == 1 and "empty continuation line" in df.warnings[0]


def test_backtick_escape_directive() -> None:
    text = "# escape=`\nFROM scratch\nRUN dir c:\\ `\n  && echo `\n  ok\nCOPY a\\b c:\\dst\\\n"
    df = parse(text)
    assert df.escape == "`" and df.directives == {"escape": "`"}
    run, copy = df.stages[0].instructions
    assert run.args == ["dir c:\\   && echo   ok"]
    assert copy.args == ["a\\b", "c:\\dst\\"]


def test_crlf_and_bom() -> None:
    df = parse("\ufeffFROM scratch\r\nRUN echo a \\\r\n  b\r\n")
    assert df.stages[0].instructions[0].args == ["echo a   b"]


@pytest.mark.parametrize(
    ("text", "directives"),
    [
        (
            "# syntax=docker/dockerfile:1\n# escape=\\\nFROM a\n",
            {"syntax": "docker/dockerfile:1", "escape": "\\"},
        ),
        ("#SYNTAX = x \n#check=skip=all\nFROM a\n", {"syntax": "x", "check": "skip=all"}),
        ("# unknown=1\n# syntax=x\nFROM a\n", {}),
        ("\n# syntax=x\nFROM a\n", {}),
        ("# a comment\n# syntax=x\nFROM a\n", {}),
        ("FROM a\n# syntax=x\n", {}),
    ],
)
def test_directives_only_at_the_top(text: str, directives: dict[str, str]) -> None:
    assert parse(text).directives == directives


def test_escape_directive_after_a_comment_is_a_comment() -> None:
    df = parse("# hello\n# escape=`\nFROM scratch\nRUN a \\\n b\n")
    assert df.escape == "\\" and df.stages[0].instructions[0].args == ["a  b"]


# -- heredocs -------------------------------------------------------------------------------


def test_heredocs() -> None:
    text = (
        "FROM scratch\n"
        "RUN <<EOF\n"
        "echo $HOME\n"
        "# not a comment here\n"
        "EOF\n"
        'COPY <<-"END" <<two /dst/\n'
        "\tliteral $X\n"
        "\tEND\n"
        "second\n"
        "two\n"
        "RUN 3<<'Q' cat /dev/fd/3\n"
        "q\n"
        "Q\n"
        'RUN echo "<<NOT" a<<b\n'
        'RUN ["sh", "-c", "cat <<EOF"]\n'
        "ONBUILD RUN <<X\n"
        "in trigger\n"
        "X\n"
        "USER after\n"
    )
    ins = parse(text).stages[0].instructions
    doc = ins[0].heredocs
    assert [(d.name, d.content, d.expand, d.chomp) for d in doc] == [
        ("EOF", "echo $HOME\n# not a comment here\n", True, False)
    ]
    assert (ins[0].line, ins[0].end_line) == (2, 5) and ins[0].args == ["<<EOF"]
    a, b = ins[1].heredocs
    assert (a.name, a.content, a.expand, a.chomp, a.body()) == (
        "END",
        "\tliteral $X\n",
        False,
        True,
        "literal $X\n",
    )
    assert (b.name, b.content, b.expand) == ("two", "second\n", True)
    assert ins[1].args == ['<<-"END"', "<<two", "/dst/"]
    assert [(d.name, d.fd, d.expand) for d in ins[2].heredocs] == [("Q", 3, False)]
    assert ins[3].heredocs == [] and ins[4].heredocs == [] and ins[4].json_form
    assert ins[5].trigger is not None and ins[5].trigger.heredocs[0].content == "in trigger\n"
    assert ins[5].args == ["RUN <<X\nin trigger\nX"]
    assert ins[6].cmd == "USER" and ins[6].line == 19


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("FROM a\n\nRUNN x\n", 3, "unknown instruction: RUNN (did you mean RUN?)"),
        ("FROM a\nfrobnicate\n", 2, "unknown instruction: frobnicate"),
        ("RUN x\n", 1, "no build stage in current context"),
        ("ARG A\nENV B=1\nFROM a\n", 2, "no build stage in current context"),
        ("FROM\n", 1, "FROM requires at least one argument"),
        ("FROM a b\n", 1, "FROM requires either one or three arguments"),
        ("FROM a AS 1x\n", 1, 'invalid name for build stage: "1x"'),
        ("FROM a AS x\nFROM b AS X\n", 2, 'duplicate stage name "x"'),
        ("FROM a\nRUN\n", 2, "RUN requires at least one argument"),
        ('FROM a\nRUN ["a", 1]\n', 2, "arrays must be comprised of strings only"),
        ("FROM a\nCOPY onlyone\n", 2, "COPY requires at least two arguments"),
        ("FROM a\nADD x\n", 2, "ADD requires at least two arguments"),
        (
            "FROM a\nCOPY --frm=x a b\n",
            2,
            "Unknown flag: frm (COPY accepts --chmod, --chown, --from, --link)",
        ),
        ("FROM a\nCOPY --from a b\n", 2, "Missing a value on flag: from"),
        ("FROM a\nCOPY --from=x --from=y a b\n", 2, "Duplicate flag specified: from"),
        ("FROM a\nCOPY --link=maybe a b\n", 2, "Expecting boolean value for flag link, not: maybe"),
        ("FROM a\nCOPY --link= a b\n", 2, "Missing a value on flag: link"),
        (
            "FROM a\nRUN --mount=type=cache,target=/x make\n",
            2,
            "Unknown flag: mount (RUN --mount needs BuildKit",
        ),
        ("FROM a\nENV --x=1 A=1\n", 2, "Unknown flag: x (ENV takes no flags)"),
        ("FROM --plat=x a\n", 1, "Unknown flag: plat"),
        (
            "FROM a\nCOPY <<EOF <<DST\nx\nEOF\ny\nDST\n",
            2,
            "COPY cannot accept a heredoc as a destination",
        ),
        ("FROM a\nENV\n", 2, "ENV requires at least one argument"),
        ("FROM a\nENV ONLYKEY\n", 2, "ENV must have two arguments"),
        ("FROM a\nENV A=1 B\n", 2, 'can\'t find = in "B". Must be of the form: name=value'),
        ("FROM a\nENV =1\n", 2, "ENV names can not be blank"),
        ("FROM a\nLABEL\n", 2, "LABEL requires at least one argument"),
        ("FROM a\nARG\n", 2, "ARG requires at least one argument"),
        ("FROM a\nARG =x\n", 2, "ARG names can not be blank"),
        ("FROM a\nWORKDIR\n", 2, "WORKDIR requires exactly one argument"),
        ("FROM a\nUSER\n", 2, "USER requires exactly one argument"),
        ("FROM a\nSTOPSIGNAL\n", 2, "STOPSIGNAL requires exactly one argument"),
        ("FROM a\nMAINTAINER\n", 2, "MAINTAINER requires exactly one argument"),
        ("FROM a\nEXPOSE\n", 2, "EXPOSE requires at least one argument"),
        ("FROM a\nVOLUME\n", 2, "VOLUME requires at least one argument"),
        ('FROM a\nVOLUME ["/a", " "]\n', 2, "VOLUME specified can not be an empty string"),
        ("FROM a\nSHELL /bin/sh -c\n", 2, "SHELL requires the arguments to be in JSON form"),
        ("FROM a\nSHELL []\n", 2, "SHELL requires at least one argument"),
        ("FROM a\nHEALTHCHECK\n", 2, "HEALTHCHECK requires at least one argument"),
        ("FROM a\nHEALTHCHECK NONE x\n", 2, "HEALTHCHECK NONE takes no arguments"),
        ("FROM a\nHEALTHCHECK --interval=1s NONE\n", 2, "HEALTHCHECK NONE takes no flags"),
        ("FROM a\nHEALTHCHECK CMD\n", 2, "Missing command after HEALTHCHECK CMD"),
        ("FROM a\nHEALTHCHECK CMD []\n", 2, "Missing command after HEALTHCHECK CMD"),
        ("FROM a\nHEALTHCHECK RUN x\n", 2, 'Unknown type "RUN" in HEALTHCHECK (try CMD)'),
        ("FROM a\nHEALTHCHECK --interval=5 CMD x\n", 2, 'time: invalid duration "5"'),
        (
            "FROM a\nHEALTHCHECK --timeout=10us CMD x\n",
            2,
            'Interval "timeout" cannot be less than 1ms',
        ),
        ("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", 2, "--retries cannot be negative (-1)"),
        ("FROM a\nHEALTHCHECK --retries=x CMD x\n", 2, "invalid syntax"),
        ("FROM a\nHEALTHCHECK --foo=1 CMD x\n", 2, "Unknown flag: foo"),
        ("FROM a\nONBUILD\n", 2, "ONBUILD requires at least one argument"),
        (
            "FROM a\nONBUILD ONBUILD RUN x\n",
            2,
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        ),
        ("FROM a\nONBUILD FROM b\n", 2, "FROM isn't allowed as an ONBUILD trigger"),
        ("FROM a\nONBUILD maintainer me\n", 2, "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("FROM a\nONBUILD RUNN x\n", 2, "unknown instruction: RUNN"),
        ("FROM a\nONBUILD COPY --nope=1 a b\n", 2, "Unknown flag: nope"),
        ("FROM a\nCOPY \\\n  --frm=x \\\n  a b\n", 2, "Unknown flag: frm"),
        ("FROM a\nRUN <<EOF\nnever ends\n", 2, "unterminated heredoc"),
        ("# escape=x\nFROM a\n", 1, "invalid escape token 'x' does not match ` or \\"),
        ("# escape=`\n# escape=\\\nFROM a\n", 2, "only one escape parser directive can be used"),
        ("# syntax=a\n# SYNTAX=b\nFROM a\n", 2, "only one syntax parser directive can be used"),
        ("# only a comment\n\n", 2, "file with no instructions"),
        ("", 1, "the Dockerfile (Dockerfile) cannot be empty"),
        ("  \n\t\n", 1, "cannot be empty"),
    ],
)
def test_syntax_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(DockerfileSyntaxError) as info:
        parse(text)
    e = info.value
    assert isinstance(e, InvalidParameter) and e.status == 400
    assert e.line == line, str(e)
    assert message in e.reason
    assert str(e).startswith(f"Dockerfile:{line}: ")
    assert e.docker_message.startswith(f"dockerfile parse error on line {line}: ")


def test_error_names_the_file() -> None:
    with pytest.raises(
        DockerfileSyntaxError, match=r"^web/Dockerfile\.dev:1: unknown instruction: NOPE"
    ):
        parse("NOPE\n", name="web/Dockerfile.dev")


def test_from_without_args_message() -> None:
    # `FROM` alone reads like Docker's: the image is missing.
    with pytest.raises(DockerfileSyntaxError, match="FROM requires"):
        parse("FROM\n")


def test_original_is_trimmed_like_docker_step_lines() -> None:
    df = parse("FROM scratch   \n   RUN echo a \\\n  b   \n")
    assert df.stages[0].from_instruction.original == "FROM scratch"
    assert df.stages[0].instructions[0].original == "RUN echo a   b"


def test_meta_env_and_stage_base() -> None:
    df = parse(
        "ARG REG=local\n"
        "ARG IMG=${REG}/busybox TAG\n"
        "ARG EMPTY\n"
        "FROM ${IMG}:${TAG:-latest}\n"
        "FROM $EMPTY\n"
        "FROM ${EMPTY:?needed}\n"
    )
    env = dockerfile.meta_env(df, {"TAG": "1.36", "UNUSED": "x", "REG": None})
    assert env == {"REG": "local", "IMG": "local/busybox", "TAG": "1.36"}
    assert dockerfile.stage_base(df, df.stages[0], env) == "local/busybox:1.36"
    assert dockerfile.meta_env(df, {"REG": "other"})["IMG"] == "other/busybox"
    with pytest.raises(
        DockerfileSyntaxError, match=r"^Dockerfile:5: base name \(\$EMPTY\) should not be blank"
    ):
        dockerfile.stage_base(df, df.stages[1], env)
    with pytest.raises(DockerfileSyntaxError, match=r"^Dockerfile:6: .*EMPTY: needed"):
        dockerfile.stage_base(df, df.stages[2], env)
    bad = parse('ARG A="unterminated\nFROM a\n')
    with pytest.raises(DockerfileSyntaxError, match=r"^Dockerfile:1: failed to process"):
        dockerfile.meta_env(bad, {})


def test_only_newline_ends_a_line() -> None:
    ins = one("RUN printf 'a\fb\vc'\r")
    assert ins.args == ["printf 'a\fb\vc'"]


def test_directive_errors_name_the_file() -> None:
    with pytest.raises(DockerfileSyntaxError, match=r"^ci\.Dockerfile:1: invalid escape token"):
        parse("# escape=!\nFROM a\n", name="ci.Dockerfile")
