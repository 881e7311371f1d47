#!/usr/bin/env node
// `npm start`: build the static site and serve it on http://127.0.0.1:5173.
// `npm start -- --lan`: serve it to the local network over HTTPS with a self-signed certificate
// (WebGPU needs a secure context; classroom laptops reach the teacher's machine by IP address).
// `npm start -- --mirror=https://mirror.example`: also allow downloads from that hub mirror (repeatable;
// the Content Security Policy admits only the hub, this machine and the mirrors named here).
import { networkInterfaces } from 'node:os';
import { build, preview } from 'vite';

const lan = process.argv.includes('--lan');
const portArg = process.argv.find((a) => a.startsWith('--port='));
const port = portArg ? Number(portArg.slice('--port='.length)) : 5173;
if (lan) process.env.TABZERO_LAN = '1';
const mirrors = [];
for (const a of process.argv.filter((x) => x.startsWith('--mirror'))) {
  const url = a.startsWith('--mirror=') ? a.slice('--mirror='.length) : '';
  let origin;
  try {
    const u = new URL(url);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('not http');
    origin = u.origin;
  } catch {
    console.error(`npm start: ${a} is not a mirror URL; give it as --mirror=https://host[:port]`);
    process.exit(2);
  }
  mirrors.push(origin);
}
process.env.TABZERO_MIRRORS = mirrors.join(',');

await build({ logLevel: 'warn' });
const server = await preview({
  preview: { host: lan ? '0.0.0.0' : '127.0.0.1', port, strictPort: true },
});
const scheme = lan ? 'https' : 'http';
console.log(`TabZero is running at ${scheme}://127.0.0.1:${port}/`);
if (lan) {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === 'IPv4' && !a.internal)
        console.log(`  on the local network: https://${a.address}:${port}/`);
    }
  }
  console.log('  (self-signed certificate: each browser asks once to accept it)');
}
if (mirrors.length) console.log(`  downloads also allowed from: ${mirrors.join(', ')}`);
console.log('Open it in Chrome or Edge (WebGPU). Press Ctrl+C to stop.');
process.on('SIGINT', () => server.httpServer.close(() => process.exit(0)));
