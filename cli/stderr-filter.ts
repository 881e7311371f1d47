// Dawn prints two warnings to the process's stderr (native code, not console.warn) whenever it opens an
// adapter on lavapipe — "maxDynamic{Uniform,Storage}BuffersPerPipelineLayout artificially reduced …" —
// which no toggle or limit request avoids. `tabzero` (cli/bin.js) runs the CLI as a child and drops
// exactly those lines from its stderr unless --verbose; everything else passes through as it comes
// (a status line redrawn with \r is never held back waiting for a newline).

/** The lines dropped: exactly Dawn's two limit warnings. */
export const DAWN_LIMIT_WARNING =
  /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?$/;

const PREFIX = 'Warning: maxDynamic';

/** A stream filter: feed it chunks, it returns what to write now. */
export class DawnWarningFilter {
  /** The current line, held while it could still be a Dawn warning. */
  private held = '';
  /** The current line is known not to be one: it passes through up to its end. */
  private passing = false;

  push(chunk: string): string {
    let out = '';
    for (const ch of chunk) {
      if (this.passing) {
        out += ch;
        if (ch === '\n' || ch === '\r') this.passing = false;
        continue;
      }
      this.held += ch;
      if (ch === '\n') {
        if (!DAWN_LIMIT_WARNING.test(this.held.slice(0, -1))) out += this.held;
        this.held = '';
      } else if (ch === '\r' && !this.held.startsWith(PREFIX)) {
        out += this.held;
        this.held = '';
      } else if (!PREFIX.startsWith(this.held) && !this.held.startsWith(PREFIX)) {
        out += this.held;
        this.held = '';
        this.passing = true;
      }
    }
    return out;
  }

  /** What is still held when the stream ends. */
  flush(): string {
    const out = this.held;
    this.held = '';
    return out;
  }
}
