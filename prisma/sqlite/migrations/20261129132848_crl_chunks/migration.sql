-- CreateTable
CREATE TABLE "CrlChunk" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "crlId" TEXT NOT NULL,
    "idx" INTEGER NOT NULL,
    "data" BLOB NOT NULL,
    CONSTRAINT "CrlChunk_crlId_fkey" FOREIGN KEY ("crlId") REFERENCES "Crl" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

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
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Crl_caId_fkey" FOREIGN KEY ("caId") REFERENCES "CertificateAuthority" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
INSERT INTO "new_Crl" ("caId", "createdAt", "der", "entries", "id", "nextUpdate", "number", "thisUpdate") SELECT "caId", "createdAt", "der", "entries", "id", "nextUpdate", "number", "thisUpdate" FROM "Crl";
DROP TABLE "Crl";
ALTER TABLE "new_Crl" RENAME TO "Crl";
CREATE UNIQUE INDEX "Crl_caId_number_key" ON "Crl"("caId", "number");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

-- CreateIndex
CREATE UNIQUE INDEX "CrlChunk_crlId_idx_key" ON "CrlChunk"("crlId", "idx");

