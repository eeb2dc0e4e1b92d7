"""The options README and the man page document are the options the CLI has, command by command (issue 26 item 8:
a help text or man page that drifts from behaviour is a bug a user finds in a script)."""
from __future__ import annotations

import re

import pytest

from mzc.cli import cli
from tests.conftest import ROOT

COMMANDS = cli.all_commands

MAN = (ROOT / "man" / "mzc.1").read_text()
README = (ROOT / "README.md").read_text()
SECTIONS = {"ENCODE OPTIONS": "encode", "DECODE OPTIONS": "decode", "TRAIN": "train", "EVAL": "eval",
            "BENCH": "bench"}


def options(command: str) -> set[str]:
    cmd = COMMANDS[command]
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")} | {"-h", "--help"}


def man_text(fragment: str) -> str:
    """troff to plain text: font switches dropped, escaped hyphens unescaped."""
    return re.sub(r"\\f[BIRP]", "", fragment).replace("\\-", "-")


def man_options(fragment: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", man_text(fragment)))


def synopsis() -> dict[str, str]:
    """Each `.B mzc VERB` entry of the SYNOPSIS with the lines up to the next .br or section."""
    head = MAN.split(".SH SYNOPSIS", 1)[1].split(".SH ", 1)[0]
    return {m.group(1): m.group(2) for m in re.finditer(r"^\.B mzc (\w+)\n(.*?)(?=^\.br|\Z)", head, re.M | re.S)}


def section(title: str) -> str:
    return MAN.split(f".SH {title}\n", 1)[1].split("\n.SH ", 1)[0]


def item_heads(text: str) -> set[str]:
    """The options an indented paragraph (.TP) documents: its first line."""
    heads = re.findall(r"^\.TP\n(.*)$", text, re.M)
    return {o for h in heads for o in man_options(h)}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_cli_option_is_in_the_man_page(command):
    named = man_options(MAN)
    missing = [p.opts for p in COMMANDS[command].params if p.opts[0].startswith("-")
               and not named & {*p.opts, *p.secondary_opts}]  # -o documents --output
    assert not missing, f"mzc {command} has options the man page never names: {missing}"


@pytest.mark.parametrize("command", sorted(synopsis()))
def test_the_synopsis_names_only_real_options(command):
    assert command in COMMANDS, f"the man page's synopsis has `mzc {command}`, which the CLI lacks"
    extra = man_options(synopsis()[command]) - options(command)
    assert not extra, f"the synopsis of mzc {command} names options it does not have: {sorted(extra)}"


@pytest.mark.parametrize("title", sorted(SECTIONS))
def test_each_documented_option_belongs_to_its_command(title):
    extra = item_heads(section(title)) - options(SECTIONS[title])
    assert not extra, f"man page section {title} documents options mzc {SECTIONS[title]} lacks: {sorted(extra)}"


def readme_commands() -> list[tuple[str, str]]:
    """(verb, rest of the line) of every `mzc VERB ...` in README's code, up to a pipe, comment or closing backtick."""
    found = []
    for m in re.finditer(r"(?<![\w./-])mzc (\w+)([^`|#\n]*)", README):
        if m.group(1) in COMMANDS:
            found.append((m.group(1), m.group(2)))
    return found


def test_readme_uses_only_options_the_commands_have():
    assert len(readme_commands()) >= 10
    wrong = [(verb, o) for verb, rest in readme_commands() for o in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", rest)
             if o not in options(verb)]
    assert not wrong, f"README runs commands with options they lack: {wrong}"
