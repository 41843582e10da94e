#!/usr/bin/env node
// The Hugging Face tokenizers library (npm `tokenizers`, a native build of the Rust crate) as the
// oracle of rodimus::io::tokenizer.
//
//   npm install --prefix /tmp/tokoracle tokenizers@0.23.2     (or: cd scripts/tokenizer_oracle && npm install)
//   NODE_PATH=/tmp/tokoracle/node_modules node scripts/tokenizer_oracle/oracle.js expected
//       writes tests/data/tokenizer/expected.jsonl ({"ids"} per corpus line, and "decoded" where the
//       library's decode, default skip_special_tokens=true, differs from the text) and variants_expected.json (the variants of
//       variants.json on every stride-th corpus line)
//   NODE_PATH=... node scripts/tokenizer_oracle/oracle.js speed --rodimus build/tok/bin/rodimus [--repeat 20]
//       encodes the corpus with the library (one call per string, and one encodeBatch) and with
//       `rodimus tokenize` (the corpus repeated --repeat times, minus a run on an empty input, which
//       is the cost of starting and loading), and prints both rates side by side.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { Tokenizer } = require('tokenizers');

const repo = path.resolve(__dirname, '..', '..');
const dataDir = path.join(repo, 'tests', 'data', 'tokenizer');
const tokenizerPath = path.join(repo, 'examples', 'models', 'tiny-coder', 'tokenizer.json');

function readCorpus() {
  return fs.readFileSync(path.join(dataDir, 'corpus.jsonl'), 'utf8').split('\n').filter((l) => l.length)
    .map((l) => JSON.parse(l).text);
}

function applyVariant(base, v) {
  const j = JSON.parse(JSON.stringify(base));
  for (const [dotted, value] of Object.entries(v.set || {})) {
    const keys = dotted.split('.');
    let o = j;
    for (const k of keys.slice(0, -1)) o = o[k];
    o[keys[keys.length - 1]] = value;
  }
  for (const t of v.add_tokens || []) j.added_tokens.push(t);
  if (v.merges_as_strings) j.model.merges = j.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m));
  return j;
}

async function makeExpected() {
  const texts = readCorpus();
  const tok = Tokenizer.fromFile(tokenizerPath);
  const lines = [];
  for (const t of texts) {
    const ids = (await tok.encode(t)).getIds();
    const decoded = await tok.decode(ids, true);
    // "decoded" only where it differs from the text (special tokens skipped, U+FFFD, ...).
    lines.push(JSON.stringify(decoded === t ? { ids } : { ids, decoded }));
  }
  fs.writeFileSync(path.join(dataDir, 'expected.jsonl'), lines.join('\n') + '\n');

  const base = JSON.parse(fs.readFileSync(tokenizerPath, 'utf8'));
  const spec = JSON.parse(fs.readFileSync(path.join(dataDir, 'variants.json'), 'utf8'));
  const out = { stride: spec.stride, library: 'tokenizers (npm) ' + require('tokenizers/package.json').version,
    variants: {} };
  for (const v of spec.variants) {
    const vt = Tokenizer.fromString(JSON.stringify(applyVariant(base, v)));
    const rows = [];
    for (let i = 0; i < texts.length; i += spec.stride) rows.push((await vt.encode(texts[i])).getIds().join(' '));
    out.variants[v.name] = rows;
  }
  let s = '{\n  "stride": ' + out.stride + ',\n  "library": ' + JSON.stringify(out.library) + ',\n  "variants": {\n';
  s += Object.entries(out.variants).map(([k, rows]) => '    ' + JSON.stringify(k) + ': [\n' +
    rows.map((r) => '      ' + JSON.stringify(r)).join(',\n') + '\n    ]').join(',\n');
  s += '\n  }\n}\n';
  fs.writeFileSync(path.join(dataDir, 'variants_expected.json'), s);
  console.log(`${texts.length} corpus lines, ${spec.variants.length} variants -> ${dataDir}`);
}

function seconds(t0) {
  const d = process.hrtime(t0);
  return d[0] + d[1] * 1e-9;
}

function cpuSeconds(c0) {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) * 1e-6;
}

async function speed(args) {
  const bin = args[args.indexOf('--rodimus') + 1];
  if (!args.includes('--rodimus') || !bin) throw new Error('speed needs --rodimus PATH');
  const repeat = args.includes('--repeat') ? Number(args[args.indexOf('--repeat') + 1]) : 20;
  const texts = readCorpus();
  const bytes = texts.reduce((a, t) => a + Buffer.byteLength(t, 'utf8'), 0);

  // HF: wall and CPU time of the whole process (its worker threads included).
  let t0 = process.hrtime();
  const tok = Tokenizer.fromFile(tokenizerPath);
  const hfLoad = seconds(t0);
  let tokens = 0;
  for (const t of texts) tokens += (await tok.encode(t)).getIds().length;  // warm-up (fills the cache)
  t0 = process.hrtime();
  let c0 = process.cpuUsage();
  for (let r = 0; r < repeat; ++r) for (const t of texts) await tok.encode(t);
  const hfEach = { wall: seconds(t0) / repeat, cpu: cpuSeconds(c0) / repeat };
  t0 = process.hrtime();
  c0 = process.cpuUsage();
  for (let r = 0; r < repeat; ++r) await tok.encodeBatch(texts);
  const hfBatch = { wall: seconds(t0) / repeat, cpu: cpuSeconds(c0) / repeat };

  // rodimus tokenize: wall and CPU time from /usr/bin/time, minus a run on an empty input.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tokspeed-'));
  const corpusLines = fs.readFileSync(path.join(dataDir, 'corpus.jsonl'), 'utf8');
  fs.writeFileSync(path.join(tmp, 'empty.jsonl'), '');
  fs.writeFileSync(path.join(tmp, 'once.jsonl'), corpusLines);
  fs.writeFileSync(path.join(tmp, 'many.jsonl'), corpusLines.repeat(repeat));
  const run = (input) => {
    const timing = path.join(tmp, 'time.txt');
    execFileSync('/usr/bin/time', ['-f', '%e %U %S', '-o', timing, bin, 'tokenize', '--tokenizer', tokenizerPath,
      '--input', path.join(tmp, input), '--output', path.join(tmp, 'out.jsonl')]);
    const [e, u, s] = fs.readFileSync(timing, 'utf8').trim().split(/\s+/).map(Number);
    return { wall: e, cpu: u + s };
  };
  const best = (input, n) => {
    const runs = Array.from({ length: n }, () => run(input));
    return { wall: Math.min(...runs.map((r) => r.wall)), cpu: Math.min(...runs.map((r) => r.cpu)) };
  };
  const minus = (a, b, div) => ({ wall: (a.wall - b.wall) / div, cpu: (a.cpu - b.cpu) / div });
  const ourLoad = best('empty.jsonl', 5);
  const ourOnce = minus(best('once.jsonl', 3), ourLoad, 1);
  const ourMany = minus(best('many.jsonl', 3), ourLoad, repeat);
  fs.rmSync(tmp, { recursive: true });

  const row = (name, t) => console.log(`${name.padEnd(62)} wall ${(t.wall * 1e3).toFixed(1).padStart(7)} ms ` +
    `(${(bytes / t.wall / 1e6).toFixed(2).padStart(6)} MB/s)  cpu ${(t.cpu * 1e3).toFixed(1).padStart(7)} ms ` +
    `(${(bytes / t.cpu / 1e6).toFixed(2).padStart(6)} MB/s, ${(tokens / t.cpu / 1e6).toFixed(2)} Mtok/s)`);
  console.log(`corpus: ${texts.length} strings, ${bytes} bytes, ${tokens} tokens; times per pass over the corpus, ` +
    `${repeat} passes; TOKENIZERS_PARALLELISM=${process.env.TOKENIZERS_PARALLELISM || '(unset)'}, ` +
    `${os.cpus().length} CPUs, load average ${os.loadavg()[0].toFixed(1)}`);
  row('HF tokenizers ' + require('tokenizers/package.json').version + ' (npm): await encode() per string', hfEach);
  row('HF tokenizers (npm): encodeBatch(corpus)', hfBatch);
  row('rodimus tokenize: first pass (cold word cache), with JSONL I/O', ourOnce);
  row('rodimus tokenize: later passes (warm word cache), with JSONL I/O', ourMany);
  console.log(`load tokenizer.json: HF ${(hfLoad * 1e3).toFixed(1)} ms wall; rodimus process start + load ` +
    `${(ourLoad.wall * 1e3).toFixed(1)} ms wall`);
}

(async () => {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === 'expected') await makeExpected();
  else if (mode === 'speed') await speed(rest);
  else {
    console.error('usage: oracle.js expected | speed --rodimus PATH [--repeat N]');
    process.exit(1);
  }
})().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
