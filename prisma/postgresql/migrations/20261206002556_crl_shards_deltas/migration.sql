-- AlterTable
ALTER TABLE "Certificate" ADD COLUMN     "crlShard" INTEGER;

-- AlterTable
ALTER TABLE "Crl" ADD COLUMN     "baseNumber" BIGINT,
ADD COLUMN     "shard" INTEGER NOT NULL DEFAULT 0;

-- CreateIndex
CREATE INDEX "Crl_caId_shard_number_idx" ON "Crl"("caId", "shard", "number");


-- Written by hand (Prisma's schema language has no partial indexes): the CRL index of the
-- *_crl_index migration, now by shard, so one shard's CRL reads only its own entries in serial
-- order (the unsharded CRL reads "crlShard" IS NULL).
DROP INDEX "Certificate_crl_idx";
CREATE INDEX "Certificate_crl_idx" ON "Certificate"("caId", "crlShard", "serial") INCLUDE ("notAfter", "revokedAt", "revocationReason", "invalidityDate") WHERE "status" IN ('revoked', 'hold');
