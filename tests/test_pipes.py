"""Output meant for pipes and for people: JSON Lines from sample, and help and messages
that show user and docstring text literally (never read as Rich markup)."""

import json
import re

from helpers import TINY, no_traceback

from charrnn.cli import app


def plain(text: str) -> str:
    """Help as a reader sees it: boxes and the wrapping of a narrow terminal taken away."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text))


def test_help_shows_square_brackets(runner):
    r = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    assert "h = tanh(b + W [h_left; h_right])" in plain(r.stdout)


def test_every_help_text_with_brackets_is_shown_whole(runner):
    """Every option or command help that holds square brackets shows them, in every command."""
    import typer

    from charrnn import config

    group = typer.main.get_command(app)
    checked = 0
    for name, command in group.commands.items():
        r = runner.invoke(app, [name, "--help"], env={"COLUMNS": "400"})
        assert r.exit_code == 0, r.output
        shown = plain(r.stdout)
        for p in command.params:
            declared = plain(getattr(p, "help", None) or "").replace("\\[", "[").strip()  # as written (unescaped)
            if "[" in declared:
                assert declared in shown, (name, p.name, declared)
                checked += 1
    assert checked >= 2 and "[h_left; h_right]" in config._kinds_help()


def test_sample_json_lines(runner, workdir, corpus_file):
    r = runner.invoke(app, ["train", str(corpus_file), "--name", "s", *TINY, "--steps", "3", "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    j = runner.invoke(app, ["sample", "s", "--num", "3", "--length", "40", "--seed", "7", "--json", "--no-stop"])
    assert j.exit_code == 0, j.output
    no_traceback(j.output)
    records = [json.loads(line) for line in j.stdout.splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2] and all(r["seed"] == 7 for r in records)
    text = runner.invoke(app, ["sample", "s", "--num", "3", "--length", "40", "--seed", "7", "--no-stop"])
    assert text.stdout == "\n\n".join(r["text"] for r in records) + "\n"  # the same texts, kept apart
    one = runner.invoke(app, ["sample", "s", "--length", "30", "--seed", "7", "--json"])
    (rec,) = [json.loads(line) for line in one.stdout.splitlines()]
    assert rec["seed"] == 7 and runner.invoke(app, ["sample", "s", "--length", "30", "--seed", "7"]).stdout == rec["text"] + "\n"
    b = runner.invoke(app, ["sample", "s", "--beam", "3", "--num", "2", "--length", "20", "--json"])
    beams = [json.loads(line) for line in b.stdout.splitlines()]
    assert [x["beam"] for x in beams] == [1, 2] and beams[0]["logp"] >= beams[1]["logp"]


def test_a_path_with_brackets_is_shown_as_written(runner, workdir, corpus_file):
    r = runner.invoke(app, ["train", str(corpus_file), "--name", "p", *TINY, "--steps", "3", "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    target = workdir / "[bold]x.json"
    i = runner.invoke(app, ["inspect", "p", "-t", "the cat", "--json", str(target)])
    assert i.exit_code == 0, i.output
    assert f"wrote {target}" in i.stderr and target.is_file()
