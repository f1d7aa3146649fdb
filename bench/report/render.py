"""Turns the measurements of bench/report.py into REPORT.md, report.json and the PNG plots.

Invariants: every number in the markdown is computed here from report.json's data (nothing typed in by hand);
ratios are llama.cpp (or uncached) TTFT over pcache's cached TTFT, so above 1 means pcache is faster; the plots
are skipped, with a line in the report, when matplotlib is missing.
"""

import json
import math
import os

from . import stats, texts


def f1(x, d=1):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def pct(k, n):
    return f"{k}/{n} ({100.0 * k / n:.0f}%)" if n else "n/a"


def size_label(size):
    return f"{size // 1024}k" if size % 1024 == 0 else f"{size / 1024:.1f}k"


# ---------------------------------------------------------------- derived tables

def sweep_rows(data):
    sw = data["sweep"]
    lp = {p["label"]: p for p in sw["llama"]["points"]}
    rows = []
    for pt in sw["points"]:
        L = lp[str(pt["size"])]
        for q, d in pt["q"].items():
            c, k = d["cached"], d["compare"]
            rows.append({"size": pt["size"], "q": int(q), "cached_tokens": c["cached_tokens"],
                         "fresh_tokens": c["fresh_tokens"], "n_input": k["uncached"]["fresh_tokens"],
                         "pc_cached": c["ttft_ms"], "pc_cached_all": c["ttft_all_ms"],
                         "pc_uncached": k["uncached"]["ttft_ms"], "lc_full": L["full_ms"][q],
                         "lc_cache": L["cached_ms"][q]["median"], "lc_prefix": L["prefix_tokens"],
                         "quality": k.get("quality", {})})
    for r in rows:
        r["x_lc_full"] = r["lc_full"] / r["pc_cached"]
        r["x_lc_cache"] = r["lc_cache"] / r["pc_cached"]
        r["x_pc_uncached"] = r["pc_uncached"] / r["pc_cached"]
    return rows


def subset_prompts(data):
    return [p for p in data["quality"]["prompts"] if p["variant"] != "scaffold-exact"]


def quality_summary(prompts):
    n = len(prompts)
    q = [p["pcache"].get("quality", {}) for p in prompts]
    acc_c = [int(texts.answer_correct(p["pcache"]["cached"]["text"], p["answer"])) for p in prompts]
    acc_u = [int(texts.answer_correct(p["pcache"]["uncached"]["text"], p["answer"])) for p in prompts]
    acc_l = [int(texts.answer_correct(p["llama"]["text"], p["answer"])) for p in prompts]
    same_l = [int(p["pcache"]["cached"]["text"].strip() == p["llama"]["text"].strip()) for p in prompts]
    same_lu = [int(p["pcache"]["uncached"]["text"].strip() == p["llama"]["text"].strip()) for p in prompts]
    first_l = [int(bool(p["pcache"]["cached"]["tokens"]) and bool(p["llama"]["tokens"]) and
                   p["pcache"]["cached"]["tokens"][0] == p["llama"]["tokens"][0]) for p in prompts]
    first_lu = [int(bool(p["pcache"]["uncached"]["tokens"]) and bool(p["llama"]["tokens"]) and
                    p["pcache"]["uncached"]["tokens"][0] == p["llama"]["tokens"][0]) for p in prompts]
    s = {"n": n, "acc_cached": acc_c, "acc_uncached": acc_u, "acc_llama": acc_l,
         "first_agree": sum(1 for x in q if x.get("first_token_agree")),
         "identical": sum(1 for x in q if x.get("identical")),
         "kl_first": [x.get("kl_first", float("nan")) for x in q],
         "kl_mean": [x.get("kl_mean", float("nan")) for x in q],
         "kl_max": [x.get("kl_max", float("nan")) for x in q],
         "same_llama": sum(same_l), "same_llama_uncached": sum(same_lu), "first_llama": sum(first_l),
         "first_llama_uncached": sum(first_lu)}
    s["diff_cu"] = (sum(acc_c) - sum(acc_u)) / n if n else float("nan")
    s["ci_cu"] = stats.paired_bootstrap(acc_c, acc_u)
    s["mcnemar_cu"] = stats.mcnemar_exact(acc_c, acc_u)
    s["diff_cl"] = (sum(acc_c) - sum(acc_l)) / n if n else float("nan")
    s["ci_cl"] = stats.paired_bootstrap(acc_c, acc_l)
    s["mcnemar_cl"] = stats.mcnemar_exact(acc_c, acc_l)
    return s


def mean(xs):
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return sum(xs) / len(xs) if xs else float("nan")


def headline_rows(rows, sizes):
    out = []
    for target in sorted({2048, max(sizes)}):  # a set: when 2048 is the largest size, its rows once
        for r in rows:
            if r["size"] == target:
                out.append(r)
    return out


# ---------------------------------------------------------------- plots

def plots(data, rows, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plots were written."
    qlens = sorted({r["q"] for r in rows})
    fig, ax = plt.subplots(figsize=(8, 5))
    modes = [("lc_full", "llama.cpp full prefill", "tab:orange"),
             ("lc_cache", "llama.cpp with its prompt cache (prefix)", "tab:red"),
             ("pc_uncached", "pcache without the cache", "tab:cyan"),
             ("pc_cached", "pcache with the cache", "tab:blue")]
    styles = ["-", "--", ":", "-."]
    for key, label, color in modes:
        for qi, q in enumerate(qlens):
            pts = sorted((r["cached_tokens"], r[key]) for r in rows if r["q"] == q)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], styles[qi % 4], color=color, marker="o",
                    label=f"{label}, {q}-token question")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("cached tokens (modules)")
    ax.set_ylabel("time to first token, ms (log)")
    ax.set_title("TTFT against cached tokens (prefix case)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "ttft_sweep.png"), dpi=110)
    plt.close(fig)

    sub = subset_prompts(data)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series = [[p["llama"]["ttft_ms"] for p in sub], [p["pcache"]["uncached"]["ttft_ms"] for p in sub],
              [p["pcache"]["cached"]["ttft_ms"] for p in sub]]
    ax.boxplot(series, showfliers=True)
    ax.set_xticks([1, 2, 3], ["llama.cpp\nwith its prompt cache", "pcache\nwithout the cache", "pcache\nwith the cache"])
    ax.set_yscale("log")
    ax.set_ylabel("time to first token, ms (log)")
    ax.set_title(f"Non-prefix case: {len(sub)} prompts importing 2-4 of {len(texts.DOCS)} documents")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "nonprefix.png"), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    variants = sorted({p["variant"] for p in sub})
    vals = [[max(p["pcache"].get("quality", {}).get("kl_mean", 0.0), 1e-7) for p in sub if p["variant"] == v]
            for v in variants]
    ax.boxplot(vals, showfliers=True)
    ax.set_xticks(range(1, len(variants) + 1), [v.replace(" + ", "\n+ ") for v in variants], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("mean KL(uncached || cached) over the answer, nats (log)")
    ax.set_title("Quality: divergence of next-token distributions, by prompt kind")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "quality.png"), dpi=110)
    plt.close(fig)
    return None


# ---------------------------------------------------------------- markdown

def llama_settings(data):
    """How the peer ran, from the settings it reported (reports before the peer's repacking show them off)."""
    s = data["sweep"]["llama"].get("settings") or {}
    fa = s.get("flash_attn", "off")
    bufts = "extra buffer types (repacked kernels) on" if s.get("use_extra_bufts") else "AMX/extra buffer types off"
    rep = ", ".join(s.get("repacked_weights") or []) or "none"
    return f"flash attention {fa}, {bufts}, repacked weights: {rep}"


def md_machine(data):
    m, v = data["machine"], data["versions"]
    lb = data["load_before"]
    return [
        "## Machine and versions", "",
        "| | |", "| --- | --- |",
        f"| CPU | {m['cpu']} |",
        f"| cores | {m['cores']} ({m['usable_cores']} usable), {data['args']['threads']} threads for both engines |",
        f"| memory | {m['memory_gib']} GiB |",
        f"| OS | {m['os']}, Python {m['python']} |",
        f"| load average (1/5/15 min) | before {lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f}, after "
        f"{m['load_average'][0]:.2f}/{m['load_average'][1]:.2f}/{m['load_average'][2]:.2f} (the machine is shared) |",
        f"| pcache | `{v['pcache_binary']}`, tree at {v['pcache']} |",
        f"| llama.cpp | llama-cpp-python {v['llama_cpp_python']} (own process, {llama_settings(data)}, "
        f"OMP_WAIT_POLICY={'PASSIVE' if data['args']['omp_passive'] else 'unset (spinning workers)'}) |",
        f"| llama.cpp CPU features | `{v['llama_system_info']}` |",
        f"| model | `{v['model']}` (sha256 `{v['model_sha256'][:16]}...`) |",
        f"| documents | Debian package `{texts.PACKAGE}` {v['base_files']}, `{texts.LICENSES}/` |",
        f"| run | started {data['started'][:16].replace('T', ' ')} UTC, {data['minutes']:.1f} minutes"
        f"{' (--quick)' if data['args']['quick'] else ''} |", ""]


def md_sweep(data, rows):
    lines = ["## 1. TTFT sweep: the prefix case", "",
             f"One schema per size: the system prompt and modules of {texts.SWEEP_CHUNK} tokens cut in order from "
             f"{', '.join(texts.SWEEP_FILES)} (`{texts.LICENSES}/`). The prompt imports every module (all of them "
             "form a prefix) and asks a question cut from one template to the given length. llama.cpp gets "
             "pcache's exact input tokens. *llama.cpp with its prompt cache* is its best case: the prefix that "
             "pcache holds cached (system prompt and modules) is decoded once and kept; per question the cells "
             "after it are removed (`llama_memory_seq_rm`) and the question and chat-template tail are decoded. Cached TTFTs are medians of "
             f"{data['args']['repeat']} runs; full-prefill TTFTs are single runs. Ratios: other / pcache cached.", "",
             "| cached tokens | question | input tokens | llama.cpp full ms | llama.cpp prompt cache ms | "
             "pcache uncached ms | pcache cached ms | vs llama.cpp full | vs llama.cpp cache | vs pcache uncached "
             "| cached = uncached answer |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        q = r["quality"]
        ident = "yes" if q.get("identical") else ("no" if q else "n/a")
        lines.append(f"| {r['cached_tokens']} | {r['q']} | {r['n_input']} | {f1(r['lc_full'], 0)} | "
                     f"{f1(r['lc_cache'])} | {f1(r['pc_uncached'], 0)} | {f1(r['pc_cached'])} | "
                     f"{f1(r['x_lc_full'])}x | {f1(r['x_lc_cache'])}x | {f1(r['x_pc_uncached'])}x | {ident} |")
    note = data["sweep"]["llama"].get("prompt_cache_rerun")
    if note:
        lines += ["", f"Note: {note} (the first measurement had wrongly let llama.cpp keep the question's shared "
                      "first tokens too); the other columns are from the main run."]
    lines += ["", "![TTFT sweep](ttft_sweep.png)", ""]
    return lines


def md_nonprefix(data):
    sub = subset_prompts(data)
    lc = [p["llama"]["ttft_ms"] for p in sub]
    pu = [p["pcache"]["uncached"]["ttft_ms"] for p in sub]
    pc = [p["pcache"]["cached"]["ttft_ms"] for p in sub]
    reuse = [p["llama"]["reused"] / p["llama"]["n"] for p in sub]
    ntok = [p["llama"]["n"] for p in sub]
    lines = ["## 2. The case prefix caches miss", "",
             f"One schema of {len(texts.DOCS)} documents ({texts.DOC_TOKENS}-token excerpts of "
             f"{', '.join(d[1] for d in texts.DOCS)}), plus a `request` module holding a parameter and a union. "
             f"{len(sub)} prompts import 2-4 documents, written in shuffled order (pcache places each at its "
             "schema position, so both engines see them in schema order). llama.cpp runs the prompts in order in "
             "one context that keeps what it last held and reuses the longest common prefix, as its server does; "
             f"it reused {100 * stats.quantiles(reuse, (0.5,))[0]:.0f}% of a prompt's tokens at the median "
             f"(prompts of {min(ntok)}-{max(ntok)} tokens). pcache TTFTs are single runs.", "",
             "| engine | p10 ms | median ms | p90 ms | mean ms |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, xs in (("llama.cpp with its prompt cache", lc), ("pcache without the cache", pu),
                     ("pcache with the cache", pc)):
        a, b, c = stats.quantiles(xs)
        lines.append(f"| {name} | {f1(a)} | {f1(b)} | {f1(c)} | {f1(mean(xs))} |")
    ratios = sorted(x / y for x, y in zip(lc, pc))
    lines += ["", f"Per prompt, llama.cpp with its prompt cache / pcache cached: median "
                  f"{f1(stats.quantiles(ratios, (0.5,))[0])}x, p10 {f1(stats.quantiles(ratios, (0.1,))[0])}x, "
                  f"p90 {f1(stats.quantiles(ratios, (0.9,))[0])}x; ratio of medians "
                  f"{f1(stats.quantiles(lc, (0.5,))[0] / stats.quantiles(pc, (0.5,))[0])}x.", "",
              "![Non-prefix TTFT](nonprefix.png)", ""]
    return lines


def md_memory(data, rows):
    m = data["model"]
    formula = 2 * m["n_layer"] * m["n_head_kv"] * m["head_dim"] * 2
    lines = ["## 3. Memory", "",
             f"Formula: 2 (K and V) x {m['n_layer']} layers x {m['n_head_kv']} KV heads x {m['head_dim']} head dim "
             f"x 2 bytes (f16) = **{formula} bytes per cached token** (model facts read by llama.cpp).", "",
             "| schema | tokens encoded | KV held MiB | bytes / token (pcache) | = formula | pcache peak RSS MiB |",
             "| --- | ---: | ---: | ---: | --- | ---: |"]
    for pt in data["sweep"]["points"]:
        s = pt["schema_stats"] or {}
        bpt = s.get("kv_bytes_per_token")
        lines.append(f"| sweep {size_label(pt['size'])} | {s.get('encoded_tokens', 'n/a')} | {f1(s.get('kv_mib'))} | "
                     f"{bpt} | {'yes' if bpt == formula else 'NO'} | {f1(pt['peak_rss_mib'], 0)} |")
    n_proc = len(data["quality"]["peak_rss_mib"])
    for i, (s, rss) in enumerate(zip(data["quality"]["schema_stats"], data["quality"]["peak_rss_mib"])):
        s = s or {}
        bpt = s.get("kv_bytes_per_token")
        lines.append(f"| license excerpts (quality, process {i + 1}/{n_proc}) | {s.get('encoded_tokens', 'n/a')} | {f1(s.get('kv_mib'))} | "
                     f"{bpt} | {'yes' if bpt == formula else 'NO'} | {f1(rss, 0)} |")
    lw = data["sweep"]["llama"]
    lines += ["", f"KV held = all of a schema's encoded pieces (union alternatives included). The pcache RSS is "
                  f"that of the process that encoded the schema and ran the cached prompts. llama.cpp's peak RSS "
                  f"(the whole sweep, one process with an {data['args']['n_ctx']}-token f16 context, inside Python): "
                  f"{f1(lw['peak_rss_mib'], 0)} MiB; non-prefix sequence: "
                  f"{f1(data['quality']['llama_peak_rss_mib'], 0)} MiB.", ""]
    return lines


def md_payback(data, rows):
    lines = ["## 4. Encoding cost and payback", "",
             "Payback = encode time / (pcache uncached TTFT - pcache cached TTFT), rounded up: the number of "
             "prompts after which encoding the schema has cost less than prefilling every prompt. Against "
             "llama.cpp's full prefill the saving per prompt is larger still.", "",
             "| schema | tokens encoded | encode ms | tok/s | question | saving per prompt ms | payback (prompts) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for pt in data["sweep"]["points"]:
        s = pt["schema_stats"] or {}
        for r in rows:
            if r["size"] != pt["size"]:
                continue
            save = r["pc_uncached"] - r["pc_cached"]
            pb = math.ceil(s["encode_ms"] / save) if s and save > 0 else None
            lines.append(f"| sweep {size_label(pt['size'])} | {s.get('encoded_tokens', 'n/a')} | "
                         f"{f1(s.get('encode_ms'), 0)} | "
                         f"{f1(s['encoded_tokens'] / s['encode_ms'] * 1e3 if s else None, 0)} | {r['q']} | "
                         f"{f1(save, 0)} | {pb if pb else 'n/a'} |")
    sub = subset_prompts(data)
    s = (data["quality"]["schema_stats"] or [None])[0]
    if s:
        save = mean([p["pcache"]["uncached"]["ttft_ms"] - p["pcache"]["cached"]["ttft_ms"] for p in sub])
        lines.append(f"| license excerpts | {s['encoded_tokens']} | {f1(s['encode_ms'], 0)} | "
                     f"{f1(s['encoded_tokens'] / s['encode_ms'] * 1e3, 0)} | cloze | {f1(save, 0)} (mean) | "
                     f"{math.ceil(s['encode_ms'] / save) if save > 0 else 'n/a'} |")
    lines.append("")
    return lines


def md_quality(data, qs):
    n = qs["n"]
    kc, ku, kl = sum(qs["acc_cached"]), sum(qs["acc_uncached"]), sum(qs["acc_llama"])
    wc, wu, wl = stats.wilson(kc, n), stats.wilson(ku, n), stats.wilson(kl, n)
    p_cu, a10, a01 = qs["mcnemar_cu"]
    p_cl, b10, b01 = qs["mcnemar_cl"]
    lines = ["## 5. Quality", "",
             f"{n} prompts of section 2, cycling through four kinds: the union's scaffold member, the non-scaffold "
             "member, an argument for the parameter, both. Each asks which word follows 8 quoted words of one "
             "imported excerpt (a cloze question; the template is ours, the words and the answer are the "
             "document's); an answer is right when it contains that word. Greedy decoding, 32 tokens. "
             "*Uncached* is pcache's plain prefill of the same tokens at the same positions (`pcache run "
             "--compare`); KL(P_uncached || P_cached) is teacher-forced over the uncached greedy answer. "
             "*llama.cpp* is a plain prefill of the same tokens at contiguous positions 0..n-1, what a user "
             "would otherwise run (it differs from pcache's uncached run in positions and in engine "
             "arithmetic).", "",
             "| measure | value |", "| --- | --- |",
             f"| first token: cached = uncached | {pct(qs['first_agree'], n)} |",
             f"| KL first token, nats: mean / median / max | {f1(mean(qs['kl_first']), 4)} / "
             f"{f1(stats.quantiles(qs['kl_first'], (0.5,))[0], 4)} / {f1(max(qs['kl_first'] or [float('nan')]), 4)} |",
             f"| KL mean over the answer, nats: mean / median / max | {f1(mean(qs['kl_mean']), 4)} / "
             f"{f1(stats.quantiles(qs['kl_mean'], (0.5,))[0], 4)} / {f1(max(qs['kl_mean'] or [float('nan')]), 4)} |",
             f"| KL max over the answer, nats: mean / max | {f1(mean(qs['kl_max']), 4)} / "
             f"{f1(max(qs['kl_max'] or [float('nan')]), 4)} |",
             f"| 32-token greedy answers: cached = uncached | {pct(qs['identical'], n)} |",
             f"| accuracy, pcache cached | {pct(kc, n)}, 95% Wilson [{f1(100 * wc[0])}, {f1(100 * wc[1])}]% |",
             f"| accuracy, pcache uncached | {pct(ku, n)}, 95% Wilson [{f1(100 * wu[0])}, {f1(100 * wu[1])}]% |",
             f"| accuracy, llama.cpp contiguous prefill | {pct(kl, n)}, 95% Wilson [{f1(100 * wl[0])}, "
             f"{f1(100 * wl[1])}]% |",
             f"| **cached - uncached** | **{f1(100 * qs['diff_cu'])} points**, 95% paired bootstrap "
             f"[{f1(100 * qs['ci_cu'][0])}, {f1(100 * qs['ci_cu'][1])}]; McNemar exact p = {p_cu:.3g} "
             f"({a10} right only cached, {a01} right only uncached) |",
             f"| **cached - llama.cpp contiguous** | **{f1(100 * qs['diff_cl'])} points**, 95% paired bootstrap "
             f"[{f1(100 * qs['ci_cl'][0])}, {f1(100 * qs['ci_cl'][1])}]; McNemar exact p = {p_cl:.3g} "
             f"({b10} right only cached, {b01} right only llama.cpp) |",
             f"| answers = llama.cpp contiguous: pcache cached / pcache uncached | {pct(qs['same_llama'], n)} / "
             f"{pct(qs['same_llama_uncached'], n)} |",
             f"| first token = llama.cpp contiguous: pcache cached / pcache uncached | {pct(qs['first_llama'], n)} / "
             f"{pct(qs['first_llama_uncached'], n)} |", "",
             "By prompt kind (cached vs pcache uncached):", "",
             "| kind | prompts | first token agrees | identical answers | mean KL over answer | accuracy cached "
             "| accuracy uncached |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    sub = subset_prompts(data)
    for v in sorted({p["variant"] for p in sub}):
        ps = [p for p in sub if p["variant"] == v]
        s = quality_summary(ps)
        lines.append(f"| {v} | {len(ps)} | {pct(s['first_agree'], len(ps))} | {pct(s['identical'], len(ps))} | "
                     f"{f1(mean(s['kl_mean']), 4)} | {pct(sum(s['acc_cached']), len(ps))} | "
                     f"{pct(sum(s['acc_uncached']), len(ps))} |")
    lines += ["", "![Quality](quality.png)", ""]
    return lines


def md_scaffold(data, rows):
    ex = [p for p in data["quality"]["prompts"] if p["variant"] == "scaffold-exact"]
    qv = [p["pcache"].get("quality", {}) for p in ex] + [r["quality"] for r in rows]
    n = len(qv)
    ident = sum(1 for q in qv if q.get("identical"))
    first = sum(1 for q in qv if q.get("first_token_agree"))
    klmax = max([q.get("kl_max", float("nan")) for q in qv] or [float("nan")])
    return ["## 6. Scaffold-exact prompts", "",
            f"Prompts that import exactly the scaffold (every module, the union's scaffold member, no argument): "
            f"{len(ex)} prompts on the license-excerpt schema and the {len(rows)} sweep prompts. Measured: "
            f"32-token greedy answers identical to the uncached run in {pct(ident, n)}, first token the same in "
            f"{pct(first, n)}, largest KL over any answer step {klmax:.3g} nats"
            f"{' (bit-identical logits)' if klmax == 0 else ''}.", ""]


def md_headline(data, rows, qs):
    hr = headline_rows(rows, data["args"]["sizes"])
    lines = ["## Headline", "",
             "| cached tokens | question tokens | pcache cached TTFT ms | vs llama.cpp full prefill | "
             "vs llama.cpp prompt cache (prefix) | vs pcache uncached |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in hr:
        lines.append(f"| {r['cached_tokens']} | {r['q']} | {f1(r['pc_cached'])} | {f1(r['x_lc_full'])}x | "
                     f"{f1(r['x_lc_cache'])}x | {f1(r['x_pc_uncached'])}x |")
    sub = subset_prompts(data)
    lc = stats.quantiles([p["llama"]["ttft_ms"] for p in sub], (0.5,))[0]
    pc = stats.quantiles([p["pcache"]["cached"]["ttft_ms"] for p in sub], (0.5,))[0]
    lines += ["", f"Non-prefix case (section 2): median TTFT {f1(lc)} ms for llama.cpp with its prompt cache vs "
                  f"{f1(pc)} ms for pcache cached: {f1(lc / pc)}x.", "",
              f"Quality on {qs['n']} prompts (section 5): cached vs uncached accuracy difference "
              f"{f1(100 * qs['diff_cu'])} points (95% CI [{f1(100 * qs['ci_cu'][0])}, {f1(100 * qs['ci_cu'][1])}]), "
              f"identical 32-token answers {pct(qs['identical'], qs['n'])}, first token agrees "
              f"{pct(qs['first_agree'], qs['n'])}, mean KL over the answer {f1(mean(qs['kl_mean']), 4)} nats.", ""]
    return lines


def md_targets(data, rows, qs):
    """The issue's targets, each checked against this run's numbers."""
    big = max(r["size"] for r in rows)
    longest = [r for r in rows if r["size"] == big]
    sub = subset_prompts(data)
    lc = stats.quantiles([p["llama"]["ttft_ms"] for p in sub], (0.5,))[0]
    pc = stats.quantiles([p["pcache"]["cached"]["ttft_ms"] for p in sub], (0.5,))[0]
    lo, hi = qs["ci_cu"]
    lines = ["## Targets of the issue, checked", "", "| target | measured | met |", "| --- | --- | --- |"]
    for r in longest:
        lines.append(f"| cached TTFT >= 60x below llama.cpp full prefill at the longest length ({r['cached_tokens']} "
                     f"cached tokens, {r['q']}-token question) | {f1(r['x_lc_full'])}x | "
                     f"{'yes' if r['x_lc_full'] >= 60 else 'NO'} |")
    lines.append(f"| cached TTFT >= 10x below llama.cpp with its prompt cache, non-prefix case (ratio of medians) | "
                 f"{f1(lc / pc)}x | {'yes' if lc / pc >= 10 else 'NO'} |")
    lines.append(f"| accuracy cached - uncached within the 95% interval of zero | {f1(100 * qs['diff_cu'])} points "
                 f"[{f1(100 * lo)}, {f1(100 * hi)}] | {'yes' if lo <= 0 <= hi else 'NO'} |")
    slower = [r for r in rows if r["x_lc_cache"] < 1]
    if slower:
        lines += ["", "Where pcache is behind: in the prefix case llama.cpp's own prompt cache (its best case: the "
                  "whole prefix kept in its context) is faster than pcache's cached path at "
                  + ", ".join(f"{r['cached_tokens']}+{r['q']}" for r in slower)
                  + " (cached tokens + question tokens; ratios " + ", ".join(f"{f1(r['x_lc_cache'], 2)}x"
                                                                     for r in slower)
                  + "). Both compute only the question's and the chat template's tokens there; pcache's cost "
                  "for them over cached spans is the higher one. Its gains are against full prefill and where "
                  "prefixes do not match (section 2)."]
    lines += ["", "Greedy answers of prompts with a subset of modules, a non-scaffold member or an argument "
                  f"are identical to pcache's uncached run in {pct(qs['identical'], qs['n'])} of the prompts (the "
                  "first token agrees in all but " + str(qs['n'] - qs['first_agree']) + "), as Prompt Cache's "
                  "approximation predicts: a module's KV was computed without the modules it now sits beside."]
    lines.append("")
    return lines


def write_all(data, out):
    rows = sweep_rows(data)
    qs = quality_summary(subset_prompts(data))
    note = plots(data, rows, out)
    lines = ["# pcache evidence report: TTFT, memory and answer quality, side by side with llama.cpp", "",
             f"Generated by `python3 bench/report.py{' --quick' if data['args']['quick'] else ''}`. All numbers "
             "below come from this run; report.json holds every sample.", ""]
    lines += md_headline(data, rows, qs)
    lines += md_targets(data, rows, qs)
    lines += md_machine(data)
    lines += md_sweep(data, rows)
    lines += md_nonprefix(data)
    lines += md_memory(data, rows)
    lines += md_payback(data, rows)
    lines += md_quality(data, qs)
    lines += md_scaffold(data, rows)
    lines += ["## Method notes", "",
              "- TTFT for pcache is its own `ttft_ms` (from the request's start: PML parsing, tokenizing, assembly, "
              "the fresh tokens' prefill and the first greedy pick). For llama.cpp it is `llama_decode` of the "
              "tokens it does not reuse plus the greedy pick (tokens are handed over ready, no tokenizing).",
              "- Both engines use the same threads, f16 KV, the same model file and the same token ids.",
              f"- The quality numbers are {data['versions']['model']}'s"
              + (": its accuracy on the cloze questions is low; what matters is the cached-vs-uncached difference."
                 if "SmolLM2" in data["versions"]["model"] else "."), ""]
    if note:  # no plots were written: no links to missing images
        lines = [ln for ln in lines if not ln.startswith("![")] + [note, ""]
    with open(os.path.join(out, "REPORT.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    slim = json.loads(json.dumps(data))
    for p in slim["quality"]["prompts"]:  # token lists of whole inputs make the file huge; keep the answers
        for k in ("cached", "uncached"):
            p["pcache"][k].pop("input_tokens", None)
            p["pcache"][k].pop("input_pos", None)
        p.pop("xml", None)
    slim["quality"].pop("excerpts", None)
    for pt in slim["sweep"]["points"]:
        for d in pt["q"].values():
            for o in (d["cached"], d["compare"]["cached"], d["compare"]["uncached"]):
                o.pop("input_tokens", None)
                o.pop("input_pos", None)
    with open(os.path.join(out, "report.json"), "w", encoding="utf-8") as f:
        json.dump(slim, f, indent=1)
