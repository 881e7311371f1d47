// `tabzero gpu`: the same adapter report the app's GPU panel shows, as JSON.
import type { Command } from 'commander';
import { acquireNodeDevice } from '../../src/engine/node-gpu.ts';

export function register(program: Command): void {
  program
    .command('gpu')
    .description('print the WebGPU adapter report (Dawn in Node) as JSON')
    .option('--compat', 'ask for a compatibility-mode adapter')
    .option('--backend <name>', 'Dawn backend: vulkan (default) or opengles')
    .action(async (opts: { compat?: boolean; backend?: string }) => {
      if (opts.backend && !['vulkan', 'opengles'].includes(opts.backend)) {
        throw new Error(`--backend must be vulkan or opengles, not "${opts.backend}"`);
      }
      const ctx = await acquireNodeDevice({
        compatibility: opts.compat || opts.backend === 'opengles',
        dawnOptions: opts.backend ? [`backend=${opts.backend}`] : [],
      });
      process.stdout.write(JSON.stringify(ctx.report, null, 2) + '\n');
      ctx.device.destroy();
    });
}
