-- AlterTable
ALTER TABLE "CertificateAuthority" ADD COLUMN     "overlapEndsAt" TIMESTAMP(3),
ADD COLUMN     "predecessorId" TEXT,
ADD COLUMN     "retiringSince" TIMESTAMP(3);

-- CreateTable
CREATE TABLE "CaCertificate" (
    "id" TEXT NOT NULL,
    "caId" TEXT NOT NULL,
    "issuerId" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "certificateDer" BYTEA NOT NULL,
    "serial" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "notBefore" TIMESTAMP(3) NOT NULL,
    "notAfter" TIMESTAMP(3) NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'good',
    "revokedAt" TIMESTAMP(3),
    "revocationReason" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "CaCertificate_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "CaCertificate_serial_key" ON "CaCertificate"("serial");

-- CreateIndex
CREATE UNIQUE INDEX "CaCertificate_fingerprint_key" ON "CaCertificate"("fingerprint");

-- CreateIndex
CREATE INDEX "CaCertificate_caId_idx" ON "CaCertificate"("caId");

-- CreateIndex
CREATE INDEX "CaCertificate_issuerId_idx" ON "CaCertificate"("issuerId");

-- CreateIndex
CREATE UNIQUE INDEX "CertificateAuthority_predecessorId_key" ON "CertificateAuthority"("predecessorId");

