// A GitLab job log as GitLab Runner writes it, with or without the line headers of its
// FF_TIMESTAMPS feature flag (on by default from runner 18.7; docs/gitlab-contract.md §5.9):
//
//   2026-12-03T07:28:58.675363Z 01E+message
//
// an RFC 3339 UTC time with six fractional digits, a space, the stream number in two hex digits,
// O (stdout) or E (stderr), and ' ' for a new line or '+' for a line that continues the previous
// line of the same stream (the runner cuts a line at a carriage return that ends a write, and
// every 8 KiB). Lines without a header are plain text; both kinds may mix. The same rules as the
// Go package service/internal/gitlab/tracefmt, which the CLI uses.
//
// The log arrives in chunks by byte offset, so a chunk may end inside a line or a header: feed()
// returns only lines nothing can change any more, pending() the ones that still may (a viewer
// draws those provisionally).

const TIME_LEN = 27;               // 2026-12-03T07:28:58.675363Z
const HEADER_LEN = TIME_LEN + 5;   // time, space, stream (2), type, line type
const RUNNER_BUF = 8 * 1024;       // the runner cuts a line without a line feed at this size
const TEMPLATE = 'dddd-dd-ddTdd:dd:dd.ddddddZ hhsc';

// couldBeHeader: s is a header or the beginning of one.
function couldBeHeader(s) {
  const n = Math.min(s.length, TEMPLATE.length);
  for (let i = 0; i < n; i++) {
    const c = s[i], want = TEMPLATE[i];
    if (want === 'd') { if (c < '0' || c > '9') return false; }
    else if (want === 'h') { if (!/[0-9a-f]/.test(c)) return false; }
    else if (want === 's') { if (c !== 'O' && c !== 'E') return false; }
    else if (want === 'c') { if (c !== ' ' && c !== '+') return false; }
    else if (c !== want) return false;
  }
  return true;
}

// parseHeader: { time (ISO string), stream, stderr, cont } or null.
function parseHeader(s) {
  if (s.length < HEADER_LEN || !couldBeHeader(s.slice(0, HEADER_LEN))) return null;
  const time = s.slice(0, TIME_LEN);
  const d = new Date(time);
  if (isNaN(d) || d.toISOString().slice(0, 10) !== time.slice(0, 10)) return null;
  return { time, stream: parseInt(s.slice(TIME_LEN + 1, TIME_LEN + 3), 16), stderr: s[TIME_LEN + 3] === 'E', cont: s[TIME_LEN + 4] === '+' };
}

// A physical segment may be continued: the runner cut it at a carriage return or its buffer size.
const mayContinue = (seg) => seg.endsWith('\r') || seg.length >= RUNNER_BUF;

// TraceParser turns chunks of a job log into lines { time, stream, stderr, text }: time is the
// runner's ISO time ('' without a header), stream -1 without a header, text the line with its
// continuations joined (ANSI, carriage returns and section markers kept: see visible()).
export class TraceParser {
  constructor() { this.frag = ''; this.queue = []; }

  feed(chunk) {
    this.frag += chunk;
    let i;
    while ((i = this.frag.indexOf('\n')) >= 0) {
      add(this.queue, this.frag.slice(0, i));
      this.frag = this.frag.slice(i + 1);
    }
    return this.take(false);
  }

  // flush: the log ended; what is left comes out.
  flush() {
    if (this.frag) { add(this.queue, this.frag); this.frag = ''; }
    return this.take(true);
  }

  pending() {
    const q = this.queue.map((e) => ({ ...e }));
    if (this.frag && !(this.frag.length < HEADER_LEN && couldBeHeader(this.frag))) add(q, this.frag);
    return q.map(line);
  }

  take(all) {
    let n = 0;
    while (n < this.queue.length && (all || !this.queue[n].open)) n++;
    return this.queue.splice(0, n).map(line);
  }
}

const line = (e) => ({ time: e.time, stream: e.stream, stderr: e.stderr, text: e.text });

function add(queue, s) {
  const hd = parseHeader(s);
  if (!hd) { queue.push({ time: '', stream: -1, stderr: false, text: s, open: false }); return; }
  const seg = s.slice(HEADER_LEN);
  let prev = null;
  for (let i = queue.length - 1; i >= 0; i--) {
    const e = queue[i];
    if (e.stream === hd.stream && e.stream >= 0 && e.stderr === hd.stderr) { prev = e; break; }
  }
  if (hd.cont && prev && prev.open) {
    prev.text += seg;
    prev.open = mayContinue(seg);
    return;
  }
  if (!hd.cont && prev) prev.open = false;
  queue.push({ time: hd.time, stream: hd.stream, stderr: hd.stderr, text: seg, open: mayContinue(seg) });
}

const SECTION = /section_(?:start|end):\d+:[A-Za-z0-9_.-]+(?:\[[^\]]*\])?\r?\x1b\[0K/g;

// visible: a line's text as a terminal leaves it: section markers removed, and of text carriage
// returns rewrote (progress bars) only what was written last.
export function visible(text) {
  const s = text.replace(SECTION, '').replace(/\r+$/, '');
  const cr = s.lastIndexOf('\r');
  return cr >= 0 ? s.slice(cr + 1) : s;
}
