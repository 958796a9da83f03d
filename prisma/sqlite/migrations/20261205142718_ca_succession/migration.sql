-- AlterTable
ALTER TABLE "CertificateAuthority" ADD COLUMN "overlapEndsAt" DATETIME;
ALTER TABLE "CertificateAuthority" ADD COLUMN "predecessorId" TEXT;
ALTER TABLE "CertificateAuthority" ADD COLUMN "retiringSince" DATETIME;

-- CreateTable
CREATE TABLE "CaCertificate" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "caId" TEXT NOT NULL,
    "issuerId" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "certificateDer" BLOB NOT NULL,
    "serial" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "notBefore" DATETIME NOT NULL,
    "notAfter" DATETIME NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'good',
    "revokedAt" DATETIME,
    "revocationReason" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
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

