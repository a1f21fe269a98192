"""`charrnn inspect --atlas` and `--select`: the atlas and the search across a text, for
the inspect command (cli/inspect.py hands over here). The numbers come from
inspect/atlas.py and inspect/search.py, the pictures from inspect/atlasview.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..config import to_dict
from ..errors import ConfigError
from ..inspect.source import Text_, read_text
from .common import err, out

ATLAS_CHARS = 300_000


def run(ck: Any, path: Path, model: Any, tok: Any, text: str | None, *, atlas: bool, chars: int, annotate: Sequence[str],
        find: str | None, select: str | None, what: str | None, threshold: float | None, margin: int, unknown: str,
        json_path: Path | None, html_path: Path | None, max_chars: int, top_k: int) -> None:  # fmt: skip
    from ..inspect import annotations as an
    from ..inspect import atlasview
    from ..inspect import atlas as atlas_mod
    from ..inspect import search as search_mod
    from ..inspect.palette import depth_of

    from ..models import registry

    if model.kind.structure != registry.SEQUENCE:
        raise ConfigError(f"the atlas is for sequence models: a {model.cfg.cell} run reads trees (inspect it without --atlas).")
    user = [an.parse(a) for a in annotate]  # check before any work
    if find is not None:
        user.append(("--find", find))
    src = read_text(ck.data_config, path, model, tok, text, chars, unknown)
    m = model.cfg
    out.print(f"[bold]inspect[/] {path}: {m.cell} {m.layers}x{m.hidden}, step {ck.step:,}; reading {len(src.ids):,} tokens of {src.source}",
              highlight=False)  # fmt: skip
    span = search_mod.parse_span(select, len(src.ids)) if select is not None else None
    what_ = what or "h"
    start = tok.eos_id
    consumers, units, th = [], [], None
    if span is not None:
        units, th = search_mod.prepare(model, src.ids, span, what_, threshold, margin, start)
        counter = search_mod.Counter(len(src.ids), what_, units, th)
        consumers.append(counter)
    at = None
    if atlas:
        anns = an.builtin(src.text) + [an.regex(n, p, src.text) for n, p in user]
        pairs = [(a, a.at(src.last_char)) for a in anns]
        at = atlas_mod.run(model, pairs, src.ids, src.tokens, start_id=start, consumers=consumers)
    elif span is not None and units:
        from ..inspect.stream import chunks

        for ch in chunks(model, src.ids, start_id=start):
            counter.add(ch)
    found = None
    if span is not None:
        found = search_mod.finish(counter, units, span, src.tokens, what_, th, margin, 1.0)  # type: ignore[arg-type]
    depth = depth_of(out.color_system)
    if at is not None:
        out.print()
        out.print(atlasview.atlas_view(at, depth))
        out.print()
        out.print(atlasview.scatter_view(at))
    if found is not None:
        out.print()
        out.print(atlasview.search_view(found, len(src.ids)))
    if json_path is not None:
        meta = {"checkpoint": str(path), "step": ck.step, "model_config": to_dict(ck.model_config), "text": src.source}
        doc = atlasview.to_json(at, found, meta)
        json_path.write_text(doc, encoding="utf-8")
        err.print(f"[dim]wrote {json_path} ({len(doc) / 1e6:.1f} MB)[/]")
    if html_path is not None:
        _page(html_path, path, ck, model, tok, src, at, found, what_, threshold, margin, max_chars, top_k)


def _page(html_path: Path, path: Path, ck: Any, model: Any, tok: Any, src: Text_, at: Any, found: Any, what: str,
          threshold: float | None, margin: int, max_chars: int, top_k: int) -> None:  # fmt: skip
    """The inspect page over the first --max-chars tokens of the text read, with the atlas
    and the search (drag over the text) in it."""
    from ..inspect import html as page
    from ..inspect.search import default_threshold
    from ..inspect.stats import busiest_unit, saturation
    from ..inspect.trace import activations

    shown = tok.decode(src.ids[:max_chars].tolist())
    acts = activations(model, tok, shown)
    if at is not None and at.findings:
        u = max(at.findings, key=lambda f: f.best[0].score - f.baseline).best[0].unit
        sel = (u.what, u.layer, u.unit)
    else:
        sel = (what, acts.layers - 1, busiest_unit(acts, what, acts.layers - 1))
    m = model.cfg
    meta = page.PageMeta(str(path), f"{m.cell} {m.layers}x{m.hidden}, step {ck.step:,}", *sel, top_k=top_k)
    th = threshold if threshold is not None else default_threshold(m.cell, what)
    doc = page.render(acts, meta, saturation(acts), atlas=at, search=found, search_defaults=(what, th, margin))
    html_path.write_text(doc, encoding="utf-8")
    err.print(f"[dim]wrote {html_path} ({len(doc.encode('utf-8')) / 1e6:.1f} MB)[/]")
