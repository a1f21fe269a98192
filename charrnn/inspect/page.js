/* charrnn inspect --html: the page's script. It reads the JSON in #data, inflates the
   quantised activations with the browser's own DecompressionStream, and colours the text.
   Text from the data reaches the page only through textContent. Opened with #selftest,
   it picks another unit, checks that the text's colours changed and that hovering shows
   predictions, and writes the result (and any script error) into #selftest. A fragment
   such as #what=c&layer=0&unit=24&at=57 opens the page on that unit with the predictions
   at position 57 shown, so a link can point at what it is about. */
"use strict";
(function () {
  const errors = [];
  window.addEventListener("error", (e) => errors.push(String(e.message || e.error || e)));
  window.addEventListener("unhandledrejection", (e) => errors.push("unhandled rejection: " + String(e.reason)));

  const D = JSON.parse(document.getElementById("data").textContent);
  const $ = (id) => document.getElementById(id);
  const T = D.tokens.length, H = D.hidden, L = D.layers;
  const C = D.colors;
  const S = {}; // signal name -> {kind, lo, hi, levels, q: Uint8Array (L, H, T)}
  const sel = { what: D.select.what, layer: D.select.layer, unit: D.select.unit };
  const unitSpans = [], probSpans = [];

  async function inflate(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function values(what, layer, unit) {
    const s = S[what], out = new Float32Array(T), base = (layer * H + unit) * T, step = (s.hi - s.lo) / s.levels;
    for (let t = 0; t < T; t++) out[t] = s.lo + s.q[base + t] * step;
    return out;
  }

  // -1..1 -> blue, white, red (as charrnn inspect colours the terminal)
  function mix(a, b, w) {
    w = Math.min(Math.max(w, 0), 1);
    return [0, 1, 2].map((i) => Math.round(a[i] + (b[i] - a[i]) * w));
  }
  const css = (rgb) => `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
  const diverging = (v) => (isFinite(v) ? (v >= 0 ? mix(C.white, C.red, v) : mix(C.white, C.blue, -v)) : C.white);
  const probable = (p) => (p < 0.5 ? mix(C.low, C.mid, 2 * p) : mix(C.mid, C.high, 2 * p - 1));

  function scaled(v, s) {
    if (s.kind === "gate") return 2 * v - 1; // 0 shut .. 1 open
    if (s.kind === "free") return $("scale").value === "own" ? v / s.hi : Math.tanh(v);
    return v;
  }

  function shown(tok) {
    // whitespace and control characters made visible; a newline shows as ↵ and then breaks the line
    let out = "";
    for (const ch of tok) {
      if (ch === "\n") out += "↵\n";
      else if (ch === "\t") out += "⇥";
      else if (ch === "\r") out += "␍";
      else if (/[\u0000-\u001f\u007f-\u009f]/.test(ch)) out += "·";
      else out += ch;
    }
    return out || "∅";
  }
  const visible = (tok) => (tok === null ? "" : tok.replace(/\n/g, "↵").replace(/ /g, "␣").replace(/\t/g, "⇥") || "∅");

  function buildText(box, spans, underline) {
    const frag = document.createDocumentFragment();
    for (let t = 0; t < T; t++) {
      const span = document.createElement("span");
      span.textContent = shown(D.tokens[t]);
      span.dataset.t = t;
      if (underline && D.inside && D.inside[t]) span.className = "in";
      spans.push(span);
      frag.appendChild(span);
    }
    box.appendChild(frag);
  }

  function legend(s) {
    const box = $("legend");
    box.textContent = "";
    const lo = s.kind === "gate" ? "0 shut" : s.kind === "free" && $("scale").value === "own" ? (-s.hi).toPrecision(3) : "−1";
    const hi = s.kind === "gate" ? "1 open" : s.kind === "free" && $("scale").value === "own" ? "+" + s.hi.toPrecision(3) : "+1";
    const a = document.createElement("span");
    a.textContent = lo;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.background = `linear-gradient(90deg, ${css(C.blue)}, ${css(C.white)}, ${css(C.red)})`;
    const b = document.createElement("span");
    b.textContent = hi;
    box.append(a, bar, b);
  }

  function recolour() {
    const s = S[sel.what];
    const v = values(sel.what, sel.layer, sel.unit);
    for (let t = 0; t < T; t++) unitSpans[t].style.backgroundColor = css(diverging(scaled(v[t], s)));
    let min = Infinity, max = -Infinity, sum = 0;
    for (const x of v) { min = Math.min(min, x); max = Math.max(max, x); sum += x; }
    const how = s.kind === "free" ? ($("scale").value === "own" ? ", coloured by value / its largest" : `, coloured by tanh(${sel.what})`) : "";
    $("unit-title").textContent = `layer ${sel.layer}, unit ${sel.unit}, ${sel.what}${how}`;
    const fmt = (x) => (x >= 0 ? "+" : "") + x.toFixed(3);
    $("unit-stats").textContent = `this unit: min ${fmt(min)}, mean ${fmt(sum / T)}, max ${fmt(max)}` +
      (D.inside ? "; positions inside --find matches are underlined" : "");
    $("scale-label").hidden = s.kind !== "free";
    legend(s);
    $("what").value = sel.what;
    $("layer").value = String(sel.layer);
    $("unit").value = String(sel.unit);
    for (const row of document.querySelectorAll("#find tbody tr")) {
      const d = row.dataset;
      row.classList.toggle("current", d.what === sel.what && +d.layer === sel.layer && +d.unit === sel.unit);
    }
    const f = D.found.findIndex((u) => u.what === sel.what && u.layer === sel.layer && u.unit === sel.unit);
    $("found").value = f >= 0 ? String(f) : "";
  }

  function select(what, layer, unit) {
    if (!(what in S)) return;
    sel.what = what;
    sel.layer = Math.min(Math.max(layer | 0, 0), L - 1);
    sel.unit = Math.min(Math.max(unit | 0, 0), H - 1);
    recolour();
    if (current !== null) showTip(current);
  }

  // ------------------------------------------------------------- the tooltip
  let current = null;
  function showTip(t) {
    current = t;
    const tip = $("tip");
    tip.textContent = "";
    const head = document.createElement("div");
    head.className = "head";
    const tok = document.createElement("span");
    tok.className = "tok";
    tok.textContent = visible(D.tokens[t]);
    head.append(`position ${t} `, tok);
    tip.appendChild(head);
    const context = document.createElement("div");
    context.className = "context";
    context.textContent = "…" + visible(D.tokens.slice(Math.max(0, t - 24), t + 1).join("")).slice(-24);
    tip.appendChild(context);
    const v = values(sel.what, sel.layer, sel.unit)[t];
    const line = (text) => { const d = document.createElement("div"); d.className = "line"; d.textContent = text; tip.appendChild(d); };
    line(`${sel.what} of layer ${sel.layer}, unit ${sel.unit}: ${(v >= 0 ? "+" : "") + v.toFixed(3)}`);
    const p = D.p_next[t];
    if (t > 0 && p !== null) line(`p(this token | before) = ${(100 * p).toFixed(1)}% (${(-Math.log2(Math.max(p, 1e-12))).toFixed(2)} bits)`);
    line(D.next[t] === null ? "the end of the text; the model's next token:" : "what the model expected next:");
    const table = document.createElement("table");
    D.top_ids[t].forEach((id, r) => {
      const row = table.insertRow();
      const word = D.vocab[id];
      if (D.next[t] !== null && word === D.next[t]) row.className = "hit";
      const c1 = row.insertCell(); c1.className = "tok"; c1.textContent = visible(word);
      const c2 = row.insertCell(); c2.className = "p"; c2.textContent = (100 * D.top_p[t][r]).toFixed(1) + "%";
      const c3 = row.insertCell(); c3.className = "barcell";
      const bar = document.createElement("div"); bar.className = "bar"; bar.style.width = (100 * D.top_p[t][r]).toFixed(1) + "%";
      c3.appendChild(bar);
    });
    tip.appendChild(table);
    tip.hidden = false;
  }

  function place(span) {
    const tip = $("tip"), r = span.getBoundingClientRect();
    const w = tip.offsetWidth, h = tip.offsetHeight;
    let x = window.scrollX + r.left, y = window.scrollY + r.bottom + 6;
    x = Math.min(x, window.scrollX + document.documentElement.clientWidth - w - 8);
    if (r.bottom + h + 12 > window.innerHeight) y = window.scrollY + r.top - h - 6;
    tip.style.left = Math.max(4, x) + "px";
    tip.style.top = Math.max(4, y) + "px";
  }

  let hovered = null;
  function hoverable(box) {
    box.addEventListener("mouseover", (e) => {
      const span = e.target.closest("span[data-t]");
      if (!span || !box.contains(span)) return;
      if (hovered) hovered.classList.remove("hover");
      hovered = span;
      span.classList.add("hover");
      showTip(+span.dataset.t);
      place(span);
    });
    box.addEventListener("mouseleave", () => {
      $("tip").hidden = true;
      current = null;
      if (hovered) hovered.classList.remove("hover");
      hovered = null;
    });
  }

  // ------------------------------------------------------------- search by example
  // Drag over the text: the units of the search signal on (>= threshold) throughout the span and
  // off in the margin around it, then the other runs of positions where they are all on together.
  function searchSpan(a, b) {
    const what = D.search && D.search.what in S ? D.search.what : sel.what;
    const th = parseFloat($("search-threshold").value), margin = Math.max(0, parseInt($("search-margin").value, 10) || 0);
    const units = [];
    for (let k = 0; k < L; k++) {
      for (let u = 0; u < H; u++) {
        const v = values(what, k, u);
        let ok = true;
        for (let t = a; t < b && ok; t++) ok = v[t] >= th;
        for (let t = Math.max(0, a - margin); t < a && ok; t++) ok = v[t] < th;
        for (let t = b; t < Math.min(T, b + margin) && ok; t++) ok = v[t] < th;
        if (ok) units.push([k, u, v]);
      }
    }
    const box = $("search-matches");
    box.textContent = "";
    const shownSel = visible(D.tokens.slice(a, b).join(""));
    if (!units.length) {
      $("search-status").textContent = `${a}:${b} “${shownSel}”: no unit of ${what} is on throughout it and off around it; lower the threshold or select less`;
      return [];
    }
    const count = new Int32Array(T);
    for (const [, , v] of units) for (let t = 0; t < T; t++) if (v[t] >= th) count[t]++;
    const runs = [];
    for (let t = 0; t < T; ) {
      if (count[t] < units.length) { t++; continue; }
      let e = t;
      while (e < T && count[e] >= units.length) e++;
      if (e <= a || t >= b) runs.push([t, e]);
      t = e;
    }
    runs.sort((x, y) => Math.abs(x[1] - x[0] - (b - a)) - Math.abs(y[1] - y[0] - (b - a)) || x[0] - y[0]);
    const top = runs.slice(0, 20);
    $("search-status").textContent = `${a}:${b} “${shownSel}”: ${units.length} units of ${what} (≥ ${th}, margin ${margin}): ` +
      units.slice(0, 12).map(([k, u]) => `${k}:${u}`).join(", ") + (units.length > 12 ? " …" : "") + `; ${runs.length} other places`;
    for (const [s0, e0] of top) {
      const li = document.createElement("li");
      li.tabIndex = 0;
      li.dataset.start = s0;
      li.dataset.end = e0;
      const pre = document.createElement("span"), hit = document.createElement("mark"), post = document.createElement("span");
      pre.textContent = visible(D.tokens.slice(Math.max(0, s0 - 16), s0).join(""));
      hit.textContent = visible(D.tokens.slice(s0, e0).join(""));
      post.textContent = visible(D.tokens.slice(e0, e0 + 16).join(""));
      li.append(`${s0}:${e0} `, pre, hit, post);
      const go = () => {
        for (const sp of document.querySelectorAll("#unit-text span.match")) sp.classList.remove("match");
        for (let t = s0; t < e0; t++) unitSpans[t].classList.add("match");
        unitSpans[s0].scrollIntoView({ block: "center" });
      };
      li.addEventListener("click", go);
      li.addEventListener("keydown", (ev) => { if (ev.key === "Enter") go(); });
      box.appendChild(li);
    }
    return top;
  }

  function selectedSpan() {
    const sel_ = window.getSelection();
    if (!sel_ || sel_.rangeCount === 0 || sel_.isCollapsed) return null;
    const r = sel_.getRangeAt(0);
    const at = (node) => { const el = node.nodeType === 1 ? node : node.parentElement; const sp = el && el.closest("span[data-t]"); return sp ? +sp.dataset.t : null; };
    let a = at(r.startContainer), b = at(r.endContainer);
    if (a === null || b === null) return null;
    if (a > b) [a, b] = [b, a];
    if (r.endOffset === 0 && r.endContainer.nodeType !== 1 && b > a) b--; // a drag that ends just before a span
    return [a, b + 1];
  }

  // ------------------------------------------------------------- set up
  async function main() {
    for (const s of D.signals) S[s.name] = { kind: s.kind, lo: s.lo, hi: s.hi, levels: s.levels, q: await inflate(s.data) };
    for (const s of D.signals) $("what").add(new Option(s.name, s.name));
    for (let k = 0; k < L; k++) $("layer").add(new Option(String(k), String(k)));
    $("found").add(new Option("—", ""));
    D.found.forEach((u, i) => $("found").add(new Option(`#${i + 1}  ${u.what} layer ${u.layer} unit ${u.unit}  (${u.score >= 0 ? "+" : ""}${u.score})`, String(i))));
    buildText($("unit-text"), unitSpans, true);
    buildText($("prob-text"), probSpans, false);
    let bits = 0, n = 0;
    for (let t = 1; t < T; t++) {
      const p = D.p_next[t];
      if (p === null) continue;
      probSpans[t].style.backgroundColor = css(probable(p));
      bits += -Math.log2(Math.max(p, 1e-12));
      n++;
    }
    $("prob-stats").textContent = n ? `mean ${(bits / n).toFixed(3)} bits/token over ${n} predictions` : "";
    hoverable($("unit-text"));
    hoverable($("prob-text"));

    $("what").addEventListener("change", () => select($("what").value, sel.layer, sel.unit));
    $("layer").addEventListener("change", () => select(sel.what, +$("layer").value, sel.unit));
    $("unit").addEventListener("change", () => select(sel.what, sel.layer, +$("unit").value));
    $("prev").addEventListener("click", () => select(sel.what, sel.layer, sel.unit - 1));
    $("next").addEventListener("click", () => select(sel.what, sel.layer, sel.unit + 1));
    $("busiest").addEventListener("click", () => select(sel.what, sel.layer, D.busiest[sel.what][sel.layer]));
    $("scale").addEventListener("change", recolour);
    $("found").addEventListener("change", () => {
      const u = D.found[+$("found").value];
      if ($("found").value !== "" && u) select(u.what, u.layer, u.unit);
    });
    for (const row of document.querySelectorAll("#find tbody tr")) {
      const pick = () => select(row.dataset.what, +row.dataset.layer, +row.dataset.unit);
      row.addEventListener("click", pick);
      row.addEventListener("keydown", (e) => { if (e.key === "Enter") pick(); });
    }
    for (const row of document.querySelectorAll("#atlas tbody tr[data-what]")) {
      const pick = () => select(row.dataset.what, +row.dataset.layer, +row.dataset.unit);
      row.addEventListener("click", pick);
      row.addEventListener("keydown", (e) => { if (e.key === "Enter") pick(); });
    }
    $("unit-text").addEventListener("mouseup", () => { const sp = selectedSpan(); if (sp) searchSpan(sp[0], sp[1]); });
    document.addEventListener("keydown", (e) => {
      if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
      if (e.key === "j") select(sel.what, sel.layer, sel.unit + 1);
      if (e.key === "k") select(sel.what, sel.layer, sel.unit - 1);
    });
    select(sel.what in S ? sel.what : D.signals[0].name, sel.layer, sel.unit);
    if (location.hash.startsWith("#selftest")) return selftest();
    const want = new URLSearchParams(location.hash.slice(1));
    if (want.has("what") || want.has("layer") || want.has("unit")) {
      select(want.get("what") || sel.what, want.has("layer") ? +want.get("layer") : sel.layer, want.has("unit") ? +want.get("unit") : sel.unit);
    }
    const at = parseInt(want.get("at"), 10);
    if (at >= 0 && at < T) unitSpans[at].dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
  }

  function selftest() {
    const before = unitSpans.map((s) => s.style.backgroundColor);
    const from = { ...sel };
    let changed = 0;
    for (let step = 1; step < H && !changed; step++) {
      $("unit").value = String((from.unit + step) % H); // as a user types another unit
      $("unit").dispatchEvent(new Event("change"));
      changed = unitSpans.filter((s, i) => s.style.backgroundColor !== before[i]).length;
    }
    const t = Math.min(1, T - 1);
    probSpans[t].dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
    const tip = $("tip").hidden ? "" : $("tip").textContent;
    const expected = visible(D.vocab[D.top_ids[t][0]]);
    let picked = null; // a row of the --find table, clicked
    const row = document.querySelector("#find tbody tr:last-child");
    if (row) {
      row.click();
      picked = sel.what === row.dataset.what && sel.layer === +row.dataset.layer && sel.unit === +row.dataset.unit;
    }
    let search = null; // #selftest&select=A:B: select that span as a drag would, then read the matches listed
    const want = new URLSearchParams(location.hash.slice(1));
    if (want.has("select")) {
      const [a, b] = want.get("select").split(":").map(Number);
      const range = document.createRange();
      range.setStart(unitSpans[a].firstChild, 0);
      range.setEnd(unitSpans[b - 1].firstChild, unitSpans[b - 1].firstChild.length);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      $("unit-text").dispatchEvent(new MouseEvent("mouseup", { bubbles: true }));
      const items = [...document.querySelectorAll("#search-matches li")];
      if (items.length) items[0].click();
      search = { status: $("search-status").textContent, matches: items.map((li) => [+li.dataset.start, +li.dataset.end]),
                 marked: document.querySelectorAll("#unit-text span.match").length };
    }
    const result = {
      ok: errors.length === 0 && changed > 0 && tip.includes(expected) && picked !== false,
      search, errors, changed, spans: unitSpans.length, from, to: { ...sel }, tip_has_top_prediction: tip.includes(expected), find_row_picks: picked,
    };
    $("selftest").textContent = JSON.stringify(result);
  }

  main().catch((e) => {
    errors.push("main: " + String(e && e.stack ? e.stack : e));
    $("selftest").textContent = JSON.stringify({ ok: false, errors });
  });
})();
