import { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { backup, restore } from '../../runtime/backup.js';
import { cliEnv, printJson } from '../runtime.js';

const bar = () =>
  process.stderr.isTTY ? new SingleBar({ format: '{task} [{bar}] {value}/{total}', stream: process.stderr }, Presets.shades_classic) : undefined;

export function backupCommands(): Command[] {
  const b = new Command('backup')
    .description('write a consistent snapshot of the database and the sealed key store to <file> (safe while the service runs; the master key is NOT included)')
    .argument('<file>', 'output file (gzip JSON lines)')
    .option('--json', 'print JSON')
    .action(async (file: string, o) => {
      const { config, log } = cliEnv();
      const trailer = await backup(config, log, file, (table, rows) => {
        if (process.stderr.isTTY) process.stderr.write(`\r${table}: ${rows}          `);
      });
      if (process.stderr.isTTY) process.stderr.write('\n');
      if (o.json) printJson({ file, counts: trailer.counts });
      else
        process.stdout.write(
          `backup written to ${file}: ${Object.entries(trailer.counts)
            .map(([t, n]) => `${n} ${t}`)
            .join(', ')}\nkeep the master key (SIGNET_MASTER_KEY or master.key) separately: the backup cannot be restored without it\n`,
        );
    });
  const r = new Command('restore')
    .description('restore a backup into an empty data directory / database (needs the master key the backup was sealed with)')
    .argument('<file>', 'backup file from `signet backup`')
    .option('--json', 'print JSON')
    .action(async (file: string, o) => {
      const { config, log } = cliEnv();
      const progress = bar();
      let started = false;
      const result = await restore(config, log, file, (done, total) => {
        if (progress) {
          if (!started) {
            progress.start(total, 0, { task: 'restoring' });
            started = true;
          }
          progress.update(done);
        }
      });
      if (started) progress?.stop();
      if (o.json) printJson(result);
      else process.stdout.write(`restored ${result.rows} rows from a backup made ${result.createdAt}\n`);
    });
  return [b, r];
}
