"""Documents, schemas and prompts of the evidence report (bench/report.py).

Every document is real text shipped by Debian's base-files package (/usr/share/common-licenses), cut at token
boundaries by the model's own tokenizer; only the question templates below are written for the benchmark.
Invariants: generation is deterministic (a seeded random.Random, no clock), module text is XML-escaped, every
question's document is among the modules its prompt imports, and each question's expected answer is the word
that follows the quoted words in that document (checked by string match).
"""

import random
import re
from xml.sax.saxutils import escape, quoteattr

LICENSES = "/usr/share/common-licenses"
PACKAGE = "base-files"

# The long text the TTFT sweep cuts its 512-token modules from, in this order.
SWEEP_FILES = ["GPL-3", "Apache-2.0", "MPL-2.0", "LGPL-2.1", "GFDL-1.3", "MPL-1.1"]
SWEEP_CHUNK = 512

# The documents of the non-prefix / quality schema: (module name, file, title, first token of the excerpt).
DOCS = [
    ("apache", "Apache-2.0", "Apache License 2.0", 150),
    ("artistic", "Artistic", "Artistic License", 120),
    ("bsd", "BSD", "BSD license", 20),
    ("cc0", "CC0-1.0", "CC0 1.0 Universal", 150),
    ("gfdl", "GFDL-1.3", "GNU Free Documentation License 1.3", 150),
    ("gpl2", "GPL-2", "GNU General Public License 2", 150),
    ("gpl3", "GPL-3", "GNU General Public License 3", 150),
    ("lgpl21", "LGPL-2.1", "GNU Lesser General Public License 2.1", 150),
    ("mpl11", "MPL-1.1", "Mozilla Public License 1.1", 150),
    ("mpl2", "MPL-2.0", "Mozilla Public License 2.0", 150),
]
DOC_TOKENS = 120

SYSTEM = "You answer questions about the license excerpts you are given. Use the exact words of the excerpts."

# Question template of the sweep, cut to 16..128 tokens by the model's tokenizer.
SWEEP_QUESTION = (
    "Read the license texts above carefully and tell me, in plain words and without legal jargon, whether I may "
    "take the source code of a program released under one of these licenses, change several files to fix bugs "
    "and add a feature that my customers asked for, and then sell copies of the changed program to those "
    "customers, either as a download or on a USB stick, without giving them the source code of my changes. "
    "If the answer depends on which of the licenses applies, say which ones allow it and which ones forbid it, "
    "name the sections you rely on, and tell me what notices I would have to keep or add to each file I "
    "changed, and whether I have to tell anyone about the patents I hold on the new feature."
)

CLOZE = 'In the {title} excerpt, which word comes right after "{words}"? Reply with that one word.'
WINDOW = 8


def sweep_schema(name, chunks):
    mods = "\n".join(f'    <module name="m{i}">{escape(t)}</module>' for i, t in enumerate(chunks))
    return (f'<schema name="{name}">\n  <system>{escape(SYSTEM)}</system>\n  <user>\n{mods}\n  </user>\n'
            f'</schema>\n')


def sweep_prompt(name, n_chunks, question):
    mods = "".join(f"<m{i}/>" for i in range(n_chunks))
    return f'<prompt schema="{name}">{mods}<user>{escape(question)}</user></prompt>\n'


def docs_schema(name, excerpts):
    mods = "\n".join(f'    <module name="{d[0]}">Excerpt from the {escape(d[2])}:\n{escape(t)}</module>'
                     for d, t in zip(DOCS, excerpts))
    return (f'<schema name="{name}">\n  <system>{escape(SYSTEM)}</system>\n  <user>\n'
            f'    Here are excerpts from software licenses.\n{mods}\n'
            f'    <module name="request">\n'
            f'      The question comes from <parameter name="who" length="8" scaffold="a user"/>.\n'
            f'      <union scaffold="short">\n'
            f'        <module name="short">Answer briefly.</module>\n'
            f'        <module name="quote">Answer by quoting the excerpt word for word.</module>\n'
            f'      </union>\n    </module>\n  </user>\n</schema>\n')


def cloze_items(excerpt):
    """(quoted words, expected next word) pairs, spread over the excerpt; windows stay inside one line-run."""
    words = excerpt.split()
    out = []
    for j in range(WINDOW, len(words) - 1):
        nxt = re.sub(r"[^A-Za-z]", "", words[j])
        window = " ".join(words[j - WINDOW:j])
        if len(nxt) >= 4 and nxt.isalpha() and words[j].strip(".,;:()\"'").isalpha() and '"' not in window:
            out.append((window, nxt))
    return out


def quality_prompts(schema_name, excerpts, n_questions, n_scaffold, seed=7):
    """Prompts with subsets of 2-4 documents in shuffled order, cycling through the four request variants, then
    n_scaffold prompts that import exactly the scaffold (every module, the union's scaffold member, no argument)."""
    rng = random.Random(seed)
    pools = [cloze_items(t) for t in excerpts]
    for p in pools:
        rng.shuffle(p)
    variants = ["scaffold member", "non-scaffold member", "argument", "non-scaffold member + argument"]
    prompts = []
    for i in range(n_questions + n_scaffold):
        d = i % len(DOCS)
        words, answer = pools[d][(i // len(DOCS)) % len(pools[d])]
        question = CLOZE.format(title=DOCS[d][2], words=words)
        if i < n_questions:
            others = [k for k in range(len(DOCS)) if k != d]
            subset = [d] + rng.sample(others, rng.choice([1, 2, 3]))
            rng.shuffle(subset)
            variant = variants[i % 4]
        else:
            subset = list(range(len(DOCS)))
            variant = "scaffold-exact"
        member = "quote" if "non-scaffold" in variant else "short"
        arg = f" who={quoteattr('the legal team')}" if "argument" in variant else ""
        mods = "".join(f"<{DOCS[k][0]}/>" for k in subset)
        xml = (f'<prompt schema="{schema_name}">{mods}<request{arg}><{member}/></request>'
               f'<user>{escape(question)}</user></prompt>\n')
        prompts.append({"id": f"q{i:03d}", "xml": xml, "doc": DOCS[d][0], "docs": [DOCS[k][0] for k in subset],
                        "variant": variant, "answer": answer, "question": question})
    return prompts


def answer_correct(text, answer):
    return re.search(r"\b" + re.escape(answer.lower()) + r"\b", text.lower()) is not None
