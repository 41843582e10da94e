#!/usr/bin/env python3
"""Build the tokenizer test corpus: tests/data/tokenizer/corpus.jsonl, one {"text": ...} per line.

Sources (all from the machine the script runs on, seeded, so a rerun on the same machine gives the
same file): lines and multi-line chunks of the Python standard library sources; prose from
/usr/share/doc; translated messages of many languages and scripts from the gettext catalogs in
/usr/share/locale; then synthetic strings: random valid UTF-8 over many Unicode blocks, whitespace
runs of every kind, special tokens inside text, contractions, digits of many scripts, long words and
long whitespace runs (longer than the tokenizer's word cache limit).

Usage: python3 scripts/tokenizer_oracle/make_corpus.py [--out tests/data/tokenizer/corpus.jsonl]
"""
import argparse
import glob
import gettext
import gzip
import json
import os
import random

SEED = 20250501


def python_lines(rng, n_lines, n_chunks):
    files = sorted(glob.glob("/usr/lib/python3*/**/*.py", recursive=True))
    rng.shuffle(files)
    out = []
    for path in files:
        if len(out) >= n_lines + n_chunks:
            break
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().split("\n")
        except (UnicodeDecodeError, OSError):
            continue
        lines = [l for l in lines if len(l) <= 300]
        if len(lines) < 12:
            continue
        for _ in range(3):
            if len(out) < n_lines:
                out.append(rng.choice(lines))
        k = rng.randrange(0, len(lines) - 10)
        out.append("\n".join(lines[k : k + rng.randrange(2, 10)]) + "\n")
    return out


def doc_prose(rng, n):
    paths = []
    for pattern in ("/usr/share/doc/*/README*", "/usr/share/doc/*/copyright", "/usr/share/doc/*/NEWS*",
                    "/usr/share/doc/*/changelog*"):
        paths += glob.glob(pattern)
    paths = sorted(set(paths))
    rng.shuffle(paths)
    out = []
    for path in paths:
        if len(out) >= n:
            break
        try:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as f:
                text = f.read(200000)
        except (UnicodeDecodeError, OSError, EOFError):
            continue
        paras = [p.strip("\n") for p in text.split("\n\n") if 20 <= len(p) <= 600]
        for p in rng.sample(paras, min(3, len(paras))):
            out.append(p)
    return out[:n]


def translations(rng, n):
    files = sorted(glob.glob("/usr/share/locale/*/LC_MESSAGES/*.mo"))
    by_lang = {}
    for f in files:
        by_lang.setdefault(f.split("/")[4], []).append(f)
    langs = sorted(by_lang)
    out = []
    per_lang = max(2, n // max(1, len(langs)))
    for lang in langs:
        msgs = []
        for f in rng.sample(by_lang[lang], min(3, len(by_lang[lang]))):
            try:
                with open(f, "rb") as fp:
                    t = gettext.GNUTranslations(fp)
            except Exception:
                continue
            for v in t._catalog.values():
                if isinstance(v, str) and 3 <= len(v) <= 400 and "\x00" not in v:
                    msgs.append(v)
        msgs = sorted(set(msgs))
        out += rng.sample(msgs, min(per_lang, len(msgs)))
    rng.shuffle(out)
    return out[:n]


BLOCKS = [
    (0x20, 0x7E), (0xA0, 0x24F), (0x250, 0x2FF), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
    (0x530, 0x58F), (0x590, 0x5FF), (0x600, 0x6FF), (0x900, 0x97F), (0x980, 0x9FF), (0xE00, 0xE7F),
    (0x10A0, 0x10FF), (0x1100, 0x11FF), (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x2070, 0x209F),
    (0x20A0, 0x20CF), (0x2100, 0x214F), (0x2190, 0x21FF), (0x2200, 0x22FF), (0x2500, 0x257F),
    (0x3000, 0x303F), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xE000, 0xF8FF),
    (0xFB00, 0xFB4F), (0xFE00, 0xFE0F), (0xFF00, 0xFFEF), (0xFFF0, 0xFFFF), (0x10000, 0x1007F),
    (0x1D400, 0x1D7FF), (0x1F300, 0x1F5FF), (0x1F600, 0x1F64F), (0x1F900, 0x1F9FF), (0x20000, 0x2A6DF),
    (0xE0000, 0xE007F), (0x10FF00, 0x10FFFF), (0x0, 0x1F), (0x7F, 0x9F),
]


def random_text(rng, length):
    chars = []
    for _ in range(length):
        lo, hi = rng.choice(BLOCKS)
        cp = rng.randint(lo, hi)
        if 0xD800 <= cp <= 0xDFFF:
            cp = 0x41
        chars.append(chr(cp))
    return "".join(chars)


WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2028", "\u2029", "\u000b",
              "\u000c", "\u0085", "\u2003", "\u200b", "\ufeff", "    ", "\n\n", " \n "]
WORDS = ["hello", "world", "def", "return", "x", "1", "42", "é", "日本", "한국어", "Ελλάδα", "мир", "🙂",
         "don't", "it's", "I'm", "we're", "they've", "you'll", "he'd", "IT'S", "'s", "''", "__init__",
         "foo.bar", "a+b", "---", "...", "\u0301", "x\u0301"]
SPECIAL = "<|endoftext|>"


def whitespace_mix(rng):
    parts = []
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.5:
            parts.append("".join(rng.choice(WHITESPACE) for _ in range(rng.randint(1, 6))))
        else:
            parts.append(rng.choice(WORDS))
    return "".join(parts)


def with_special(rng, base):
    pieces = [SPECIAL, SPECIAL + SPECIAL, " " + SPECIAL + " ", "<|endoftext|", "|endoftext|>", "<|endoftext|>\n",
              "<|<|endoftext|>|>", "<|ENDOFTEXT|>"]
    s = base
    for _ in range(rng.randint(1, 3)):
        k = rng.randint(0, len(s))
        s = s[:k] + rng.choice(pieces) + s[k:]
    return s


def fixed_cases():
    digits = "0123456789 ٠١٢٣٤٥٦٧٨٩ ०१२३ ０１２３ ²³¹ ½ ⅷ Ⅻ 一二三 12345678901234567890"
    return [
        "", " ", "\n", "\t", "  \n  ", digits, "x" * 300, "ab" * 200, " " * 1000, "\n" * 300,
        "\t \t \t" * 50, "é" * 200, "日本語" * 120, "🙂" * 100, "a" + " " * 257 + "b",
        "'s 's's 'S 'T 'RE 're're", "don't can't won't I'll we've they'd", SPECIAL, SPECIAL * 5,
        "a" + SPECIAL + "b", SPECIAL + " hello", "hello " + SPECIAL, "<|endoftext|><|endoftext", "<|",
        "👨\u200d👩\u200d👧\u200d👦 family", "🏳️\u200d🌈 flag", "e\u0301 vs é", "ﬁ ligature", "Åström",
        "\u0000\u0001\u0002 controls \u007f", "\ufffd replacement", "\U0010ffff last", "\ue000 private use",
        "   leading spaces", "trailing spaces   ", "mixed\u00a0nbsp\u00a0", "tab\there", "cr\rlf\r\n",
        "x=1;y=2", "a_b_c", "CamelCaseName", "snake_case_name", "SCREAMING_CASE", "0x1F 0b101 1e-9 3.14159",
        "http://example.com/path?q=1&r=2#frag", "user@example.org", "C:\\Windows\\System32", "$HOME/.bashrc",
    ]


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "data", "tokenizer", "corpus.jsonl"))
    args = ap.parse_args()
    rng = random.Random(SEED)
    texts = fixed_cases()
    texts += python_lines(rng, 700, 300)
    texts += doc_prose(rng, 300)
    texts += translations(rng, 600)
    texts += [random_text(rng, rng.randint(1, 80)) for _ in range(200)]
    texts += [whitespace_mix(rng) for _ in range(150)]
    mixed_sources = texts[60:]
    texts += [with_special(rng, rng.choice(mixed_sources)) for _ in range(120)]
    texts += ["".join(rng.choice(WORDS) for _ in range(rng.randint(1, 20))) for _ in range(80)]
    with open(args.out, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    print(f"{len(texts)} strings -> {os.path.normpath(args.out)}")


if __name__ == "__main__":
    main()
