#!/usr/bin/env node
// The `tabzero` command: registers tsx so the TypeScript sources run as they are, then runs the CLI.
// (npx and global installs start this file through a link, so main.ts cannot tell from argv[1].)
import { register } from 'tsx/esm/api';

register();
const argv = process.argv.slice(2);
const relay = await import('./stderr-relay.ts');
relay.dieWithRelay();
// Where stderr is a plain file or a socket, Dawn's warnings are filtered by relaying (stderr-relay.ts).
const code = relay.relayWanted(argv)
  ? await relay.relayStderr(process.argv[1], argv)
  : await (await import('./main.ts')).main(argv);
// Dawn keeps the event loop alive; exit explicitly once the command is done.
process.exit(code);
