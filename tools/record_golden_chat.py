#!/usr/bin/env python3
"""Renders conversations with SmolLM2's own chat template (Jinja) as goldens
for the ChatML formatter.

    /opt/lcpvenv/bin/python tools/record_golden_chat.py \
        [models/SmolLM2-135M-Instruct.Q4_1.gguf] [tests/data/golden/chat_smollm2.json]

The template is read from the model's tokenizer.chat_template (through
llama-cpp-python's metadata) and rendered with jinja2 the way HF does
(trim_blocks and lstrip_blocks off). The template text itself is stored too,
so the C test can check default-system-message extraction without the model.
"""
import json
import sys

import jinja2
import llama_cpp

CONVERSATIONS = [
    ([("user", "Hello!")], True),
    ([("user", "Hello!")], False),
    ([("system", "You are terse."), ("user", "Hi"), ("assistant", "Hello."), ("user", "Bye")], True),
    ([("user", "first"), ("assistant", "second"), ("user", "  spaced\n\ttext  ")], True),
    ([("assistant", "I start."), ("user", "ok")], False),
    ([("system", "only system")], True),
    ([], True),
    ([("user", "unicode caf\u00e9 \u4f60\u597d \U0001F600 and <|im_end|> inside")], True),
]


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    out = sys.argv[2] if len(sys.argv) > 2 else "tests/data/golden/chat_smollm2.json"
    llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    template_text = llm.metadata["tokenizer.chat_template"]
    template = jinja2.Environment(loader=jinja2.BaseLoader()).from_string(template_text)
    cases = []
    for conv, gen in CONVERSATIONS:
        messages = [{"role": r, "content": c} for r, c in conv]
        text = template.render(messages=messages, add_generation_prompt=gen, bos_token="", eos_token="")
        cases.append({"roles": [r for r, _ in conv], "contents": [c for _, c in conv],
                      "add_generation_prompt": gen, "rendered": text})
    golden = {"model": model.rsplit("/", 1)[-1], "jinja2_version": jinja2.__version__,
              "template": template_text, "cases": cases}
    with open(out, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote %s: %d cases" % (out, len(cases)))


if __name__ == "__main__":
    main()
