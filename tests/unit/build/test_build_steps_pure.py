"""The builder's pure parts: query options, ARG scoping, config changes and their history
comments, COPY destinations, the step cache and the output lines, without an engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.build import copying, metadata
from engine.build.args import BuildArgs
from engine.build.cache import BuildCache
from engine.build.dockerfile import parse, parse_instruction
from engine.build.output import Output
from engine.build.request import parse_options
from engine.build.steps import heredoc_script
from engine.errors import InvalidParameter

# -- request ------------------------------------------------------------------------------


def test_options_from_the_query() -> None:
    opts = parse_options(
        {
            "t": ["app", "app:v2", "app"],
            "buildargs": [json.dumps({"A": "1", "B": None})],
            "labels": [json.dumps({"k": "v"})],
            "nocache": ["1"],
            "target": ["final"],
            "q": ["true"],
            "networkmode": ["default"],
            "cachefrom": ['["x"]'],
        }
    )
    assert opts.tags == ["app:latest", "app:v2"]
    assert opts.build_args == {"A": "1", "B": None}
    assert opts.labels == {"k": "v"}
    assert opts.no_cache and opts.quiet and opts.target == "final"
    assert opts.network_mode == "" and opts.dockerfile == "Dockerfile"
    assert opts.notes and "ignored" in opts.notes[0]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"buildargs": ["{"]}, "invalid JSON in query parameter buildargs"),
        ({"buildargs": ['{"A": 1}']}, "must be a string or null"),
        ({"labels": ['["x"]']}, "labels must be a JSON object"),
        ({"t": ["UPPER"]}, "invalid tag"),
        ({"t": ["a@sha256:" + "0" * 64]}, "can not hold a digest"),
        ({"networkmode": ["container:x"]}, "networkmode"),
    ],
)
def test_bad_options_name_the_parameter(query: dict[str, list[str]], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        parse_options(query)


# -- ARG scoping --------------------------------------------------------------------------


def test_meta_args_need_redeclaring_and_build_args_override() -> None:
    df = parse("ARG V=1\nARG W\nFROM busybox:$V\nARG V\nARG X=x-$V\nARG W\n")
    args = BuildArgs({"W": "given", "UNUSED": "u", "HTTP_PROXY": "p"})
    for meta in df.meta_args:
        args.declare_meta(meta)
    assert args.meta_env() == {"V": "1", "W": "given"}
    stage = args.stage()
    assert stage.set_values() == {}  # meta ARGs are not seen in a stage before re-declaring
    for ins in df.stages[0].instructions:
        stage.declare(ins, {})
    assert stage.set_values() == {"V": "1", "X": "x-1", "W": "given"}
    assert stage.expansion_env({"V": "from-env"})["V"] == "from-env"  # ENV wins
    assert stage.run_env({"X": "e"}) == ["V=1", "W=given", "HTTP_PROXY=p"]
    assert stage.history_args({}) == ["V=1", "W=given", "X=x-1"]
    assert args.unconsumed() == ["UNUSED"]  # the proxy args are predefined


# -- config changes and history comments -------------------------------------------------


def test_config_changes_and_their_comments() -> None:
    cfg: dict[str, Any] = {"Env": ["PATH=/bin", "A=old"], "Cmd": ["sh"]}
    assert metadata.set_env(cfg, [("A", "new"), ("B", "b")]) == "ENV A=new B=b"
    assert cfg["Env"] == ["PATH=/bin", "A=new", "B=b"]
    shell = ["/bin/sh", "-c"]
    ep = parse_instruction('ENTRYPOINT ["/bin/echo"]')
    assert metadata.set_entrypoint(cfg, ep, shell, cmd_set=False) == 'ENTRYPOINT ["/bin/echo"]'
    assert cfg["Cmd"] is None  # a CMD from the base does not survive a new ENTRYPOINT
    cmd = parse_instruction("CMD echo hi")
    assert metadata.set_cmd(cfg, cmd, shell) == 'CMD ["/bin/sh" "-c" "echo hi"]'
    assert metadata.expose(cfg, ["80", "53/udp", "8000-8001"]) == (
        "EXPOSE 53/udp 80/tcp 8000/tcp 8001/tcp"
    )
    with pytest.raises(InvalidParameter, match="Invalid containerPort"):
        metadata.expose(cfg, ["http"])
    assert metadata.workdir(cfg, "/a") == "WORKDIR /a"
    assert metadata.workdir(cfg, "b/../c") == "WORKDIR /a/c"
    hc = parse_instruction("HEALTHCHECK --interval=2s --retries=3 CMD true")
    metadata.healthcheck(cfg, hc)
    assert cfg["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"],
        "Interval": 2_000_000_000,
        "Retries": 3,
    }
    assert metadata.go_list(['a "q"']) == '["a \\"q\\""]'


# -- COPY destinations ---------------------------------------------------------------------


def test_destinations_and_sources() -> None:
    assert copying.destination("x", "/app") == ("/app/x", False)
    assert copying.destination("x/", "/app") == ("/app/x", True)
    assert copying.destination(".", "/app") == ("/app", True)
    assert copying.destination("/abs/../y", "/app") == ("/y", False)
    assert copying.clean_source("./a/../b/") == "b"
    with pytest.raises(InvalidParameter, match="forbidden path outside the build context"):
        copying.clean_source("../etc/passwd")


def test_several_sources_need_a_directory(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    sources = copying.context_sources(tmp_path, ["a", "b"], "COPY", False)
    plan = copying.CopyPlan(sources, "/dest", "/", None, None, "COPY")
    with pytest.raises(InvalidParameter, match="must be a directory and end with a /"):
        copying.layer_entries(plan, [], tmp_path)


def test_globs_match_per_component(tmp_path: Path) -> None:
    for name in ("x1.txt", "x2.txt", "sub/x3.txt", ".hidden.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    found = copying.context_sources(tmp_path, ["*.txt"], "COPY", False)
    assert sorted(s.name for s in found) == [".hidden.txt", "x1.txt", "x2.txt"]
    with pytest.raises(InvalidParameter, match="no source files were specified"):
        copying.context_sources(tmp_path, ["*.none"], "COPY", False)


# -- the step cache -----------------------------------------------------------------------


def test_cache_entries_and_parent_links_survive_a_restart(tmp_path: Path) -> None:
    cache = BuildCache(tmp_path)
    cache.record("sha256:p", "run x", "sha256:c", ["sha256:p", "sha256:c"])
    again = BuildCache(tmp_path)
    assert again.lookup("sha256:p", "run x", lambda i: True) == "sha256:c"
    assert again.lookup("sha256:p", "run x", lambda i: False) is None  # the image went away
    assert again.lookup("sha256:p", "run y", lambda i: True) is None
    assert again.with_children(["sha256:p", "sha256:c"]) == {"sha256:p"}
    assert again.with_children(["sha256:p"]) == set()  # the child is gone: p is dangling
    assert again.forget_steps() == 1
    assert again.lookup("sha256:p", "run x", lambda i: True) is None


# -- output --------------------------------------------------------------------------------


def test_output_lines_are_dockers() -> None:
    lines: list[dict[str, Any]] = []
    out = Output(lines.append)
    out.step(1, 2, "FROM busybox")
    out.image("sha256:" + "ab" * 32)
    out.using_cache()
    out.running_in("c" * 64)
    out.removing("c" * 64)
    out.done("sha256:" + "ab" * 32, ["t1:latest"])
    assert [m.get("stream") for m in lines] == [
        "Step 1/2 : FROM busybox\n",
        " ---> abababababab\n",
        " ---> Using cache\n",
        " ---> Running in cccccccccccc\n",
        "Removing intermediate container cccccccccccc\n",
        None,
        "Successfully built abababababab\n",
        "Successfully tagged t1:latest\n",
    ]
    assert lines[5] == {"aux": {"ID": "sha256:" + "ab" * 32}}
    quiet: list[dict[str, Any]] = []
    Output(quiet.append, quiet=True).done("sha256:" + "ab" * 32, [])
    assert quiet[-1] == {"stream": "sha256:" + "ab" * 32 + "\n"}


def test_run_heredocs_become_shell_text() -> None:
    df = parse("FROM b\nRUN cat <<EOF > /f\nhello $X\nEOF\nRUN <<-EOT\n\techo hi\nEOT\n")
    feed, script = df.stages[0].instructions
    assert heredoc_script(feed) == "cat <<EOF > /f\nhello $X\nEOF\n"  # the shell feeds cat
    assert heredoc_script(script) == "echo hi\n"  # alone: the body is the script
