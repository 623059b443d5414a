/**
 * A progress bar on stderr for long CLI work (`moat sim`): redrawn in place on a terminal, and on
 * anything else (a pipe, a CI log) one line when a phase starts and one when it ends, so logs stay short.
 */
export class ProgressBar {
  private phase = "";
  private lastDrawn = 0;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  update(phase: string, done: number, total: number): void {
    const tty = this.stream.isTTY === true;
    if (phase !== this.phase) {
      if (tty && this.phase) this.stream.write("\n");
      this.phase = phase;
      if (!tty) this.stream.write(`${phase}: 0/${total}\n`);
    }
    if (tty) {
      const now = Date.now();
      if (done !== total && now - this.lastDrawn < 100) return;
      this.lastDrawn = now;
      const width = 30;
      const filled = total === 0 ? width : Math.round((done / total) * width);
      this.stream.write(`\r${phase.padEnd(16)} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total}`);
      if (done === total) {
        this.stream.write("\n");
        this.phase = "";
      }
    } else if (done === total && total > 0) this.stream.write(`${phase}: ${done}/${total}\n`);
  }

  /** A line of narration; ends a bar in progress first. */
  note(message: string): void {
    if (this.stream.isTTY === true && this.phase) {
      this.stream.write("\n");
      this.phase = "";
    }
    this.stream.write(message + "\n");
  }
}
