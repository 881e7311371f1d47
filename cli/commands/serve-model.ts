// `tabzero serve-model DIR`: serves a model folder in the hub's URL layout (with Range), so a classroom
// downloads the weights once from the teacher's machine instead of thirty times over the Wi-Fi.
import { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { startModelServer } from '../../src/model/node-model-server.ts';
import { positiveInt } from './tiny-model.ts';

const DEFAULT_PORT = 8080;
/** All interfaces by default: the point is to be reachable from the other laptops in the room. */
const DEFAULT_HOST = '0.0.0.0';
const DEFAULT_REPO = 'Qwen/Qwen2-0.5B-Instruct';

export function register(program: Command): void {
  program
    .command('serve-model')
    .description(
      "Serve a model folder as /{repo}/resolve/{revision}/{file} (hub layout, HTTP Range) for the app's hub endpoint setting",
    )
    .argument('<dir>', 'model folder')
    .option('--port <port>', 'port', positiveInt, DEFAULT_PORT)
    .option('--host <host>', 'address to listen on', DEFAULT_HOST)
    .option('--repo <name>', 'repo name the clients ask for (any when "*")', DEFAULT_REPO)
    .option(
      '--tls-cert <pem>',
      'serve HTTPS with this certificate (needed when the app is served over HTTPS); may hold the key too',
    )
    .option('--tls-key <pem>', 'private key for --tls-cert (default: read it from the --tls-cert file)')
    .action(
      async (
        dir: string,
        args: { port: number; host: string; repo: string; tlsCert?: string; tlsKey?: string },
      ) => {
        if (args.tlsKey && !args.tlsCert) throw new Error('--tls-key needs --tls-cert');
        const cert = args.tlsCert ? await readFile(args.tlsCert, 'utf8') : undefined;
        const key = args.tlsKey ? await readFile(args.tlsKey, 'utf8') : cert;
        if (cert && !/PRIVATE KEY-----/.test(key ?? ''))
          throw new Error(`${args.tlsCert}: no private key in it; pass --tls-key`);
        const server = await startModelServer({
          tls: cert && key ? { cert, key } : undefined,
          dir,
          port: args.port,
          host: args.host,
          repo: args.repo === '*' ? undefined : args.repo,
          onRequest: (r) =>
            process.stdout.write(`${r.status} ${r.method} ${r.path}${r.range ? ` (${r.range})` : ''}\n`),
        });
        const port = new URL(server.url).port;
        const addresses =
          args.host === DEFAULT_HOST
            ? Object.values(networkInterfaces())
                .flat()
                .filter((a) => a && a.family === 'IPv4')
                .map((a) => `http://${a!.address}:${port}`)
            : [server.url];
        process.stdout.write(
          `serving ${dir} as ${args.repo}; hub endpoint: ${addresses.join(' or ')}\n(Ctrl-C to stop)\n`,
        );
        await new Promise<void>((done) => {
          for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, done);
        });
        await server.close();
      },
    );
}
