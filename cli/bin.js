#!/usr/bin/env node
// The `tabzero` command: registers tsx so the TypeScript sources run as they are, then runs the CLI.
// (npx and global installs start this file through a link, so main.ts cannot tell from argv[1].)
// Unless --verbose, the CLI runs as a child whose stderr passes through a filter for Dawn's two native
// limit warnings (cli/stderr-filter.ts); stdin, stdout, signals and the exit status pass through, and the
// child dies with this process (a SIGKILL of `tabzero` leaves no trainer behind).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register();

const CHILD = 'TABZERO_CLI_CHILD';

if (process.env[CHILD] === undefined && !process.argv.includes('--verbose')) {
  const child = spawn(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    {
      stdio: ['inherit', 'inherit', 'pipe'],
      env: {
        ...process.env,
        [CHILD]: String(process.pid),
        ...(process.stderr.isTTY ? { TABZERO_STDERR_TTY: String(process.stderr.columns ?? 100) } : {}),
      },
    },
  );
  const { DawnWarningFilter } = await import('./stderr-filter.ts');
  const filter = new DawnWarningFilter();
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => process.stderr.write(filter.push(d)));
  child.stderr.on('end', () => process.stderr.write(filter.flush()));
  // Ctrl+C reaches the whole process group: the child stops gracefully; this one waits for it.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('close', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
} else {
  const parent = Number(process.env[CHILD]);
  if (parent) {
    // Our stderr is the filter's pipe: tell the CLI whether the person's stderr is a terminal.
    if (process.env.TABZERO_STDERR_TTY) {
      Object.defineProperty(process.stderr, 'isTTY', { value: true });
      Object.defineProperty(process.stderr, 'columns', { value: Number(process.env.TABZERO_STDERR_TTY) });
    }
    // Die with the parent: once it is gone (SIGKILL), this process is reparented.
    setInterval(() => {
      if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL');
    }, 200).unref();
  }
  const { main } = await import('./main.ts');
  const code = await main(process.argv.slice(2).filter((a) => a !== '--verbose'));
  // Dawn keeps the event loop alive; exit explicitly once the command is done.
  process.exit(code);
}
