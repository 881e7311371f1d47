#!/usr/bin/env node
// The `tabzero` command: registers tsx so the TypeScript sources run as they are, then runs the CLI.
// (npx and global installs start this file through a link, so main.ts cannot tell from argv[1].)
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
const code = await main(process.argv.slice(2));
// Dawn keeps the event loop alive; exit explicitly once the command is done.
process.exit(code);
