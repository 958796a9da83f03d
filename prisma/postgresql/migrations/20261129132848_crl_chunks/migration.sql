-- AlterTable
ALTER TABLE "Crl" ADD COLUMN     "chunks" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "CrlChunk" (
    "id" TEXT NOT NULL,
    "crlId" TEXT NOT NULL,
    "idx" INTEGER NOT NULL,
    "data" BYTEA NOT NULL,

    CONSTRAINT "CrlChunk_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "CrlChunk_crlId_idx_key" ON "CrlChunk"("crlId", "idx");

-- AddForeignKey
ALTER TABLE "CrlChunk" ADD CONSTRAINT "CrlChunk_crlId_fkey" FOREIGN KEY ("crlId") REFERENCES "Crl"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

