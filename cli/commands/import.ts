// `tabzero import`: a run archive (from the app or `tabzero export --format archive`) as a run folder,
// which `tabzero train --resume --out DIR` continues and `tabzero export` exports.
import type { Command } from 'commander';
import { importRunArchiveFile } from '../../src/store/node-archive.ts';
import { NodeRunStore } from '../../src/store/node-run-store.ts';

export function register(program: Command): void {
  program
    .command('import')
    .description('import a run archive (.tabzero.tar) as a run folder')
    .argument('<archive>', 'the archive file')
    .requiredOption('--out <dir>', 'the new run folder (must not exist)')
    .action(async (archive: string, a: { out: string }) => {
      const meta = await importRunArchiveFile(new NodeRunStore(process.cwd()), a.out, archive);
      process.stdout.write(
        `imported run ${meta.id} at step ${meta.step} of ${meta.config.totalSteps} into ${a.out}\n`,
      );
    });
}
