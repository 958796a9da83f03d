-- AlterTable
ALTER TABLE "Certificate" ADD COLUMN "crlShard" INTEGER;

-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Crl" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "caId" TEXT NOT NULL,
    "number" BIGINT NOT NULL,
    "thisUpdate" DATETIME NOT NULL,
    "nextUpdate" DATETIME NOT NULL,
    "der" BLOB NOT NULL,
    "chunks" INTEGER NOT NULL DEFAULT 0,
    "entries" INTEGER NOT NULL,
    "shard" INTEGER NOT NULL DEFAULT 0,
    "baseNumber" BIGINT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Crl_caId_fkey" FOREIGN KEY ("caId") REFERENCES "CertificateAuthority" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
INSERT INTO "new_Crl" ("caId", "chunks", "createdAt", "der", "entries", "id", "nextUpdate", "number", "thisUpdate") SELECT "caId", "chunks", "createdAt", "der", "entries", "id", "nextUpdate", "number", "thisUpdate" FROM "Crl";
DROP TABLE "Crl";
ALTER TABLE "new_Crl" RENAME TO "Crl";
CREATE INDEX "Crl_caId_shard_number_idx" ON "Crl"("caId", "shard", "number");
CREATE UNIQUE INDEX "Crl_caId_number_key" ON "Crl"("caId", "number");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;


-- Written by hand (Prisma's schema language has no partial indexes): the CRL index of the
-- *_crl_index migration, now by shard, so one shard's CRL reads only its own entries in serial
-- order (the unsharded CRL reads "crlShard" IS NULL).
DROP INDEX "Certificate_crl_idx";
CREATE INDEX "Certificate_crl_idx" ON "Certificate"("caId", "crlShard", "serial", "notAfter", "revokedAt", "revocationReason", "invalidityDate") WHERE "status" IN ('revoked', 'hold');
