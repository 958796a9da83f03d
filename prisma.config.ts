// Prisma CLI configuration. Signet never needs Prisma's native engines: the Wasm schema
// engine runs through a driver adapter (engine: "js"). SIGNET_PRISMA_PROVIDER picks the schema.
import path from 'node:path';
import { defineConfig } from 'prisma/config';
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';

const provider = process.env.SIGNET_PRISMA_PROVIDER === 'postgresql' ? 'postgresql' : 'sqlite';

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join('prisma', provider, 'schema.prisma'),
  migrations: { path: path.join('prisma', provider, 'migrations') },
  async adapter() {
    if (provider === 'postgresql') {
      return new PrismaPg({ connectionString: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test' });
    }
    return new PrismaBetterSQLite3({ url: process.env.SIGNET_PRISMA_SQLITE_URL ?? 'file:./data/prisma-cli.db' });
  },
});
