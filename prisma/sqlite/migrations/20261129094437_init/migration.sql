-- CreateTable
CREATE TABLE "CertificateAuthority" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "parentId" TEXT,
    "certificateDer" BLOB NOT NULL,
    "subject" TEXT NOT NULL,
    "serial" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "keyAlgorithm" TEXT NOT NULL,
    "keyId" TEXT,
    "status" TEXT NOT NULL,
    "pathLen" INTEGER,
    "notBefore" DATETIME NOT NULL,
    "notAfter" DATETIME NOT NULL,
    "crlNumber" BIGINT NOT NULL DEFAULT 0,
    "revokedAt" DATETIME,
    "revocationReason" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "CertificateAuthority_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "CertificateAuthority" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "KeyRecord" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "algorithm" TEXT NOT NULL,
    "kekId" TEXT NOT NULL,
    "sealed" BLOB NOT NULL,
    "publicKeyDer" BLOB NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "Certificate" (
    "serial" TEXT NOT NULL PRIMARY KEY,
    "caId" TEXT NOT NULL,
    "profile" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "commonName" TEXT,
    "sans" TEXT NOT NULL,
    "sanText" TEXT NOT NULL,
    "keyAlgorithm" TEXT NOT NULL,
    "notBefore" DATETIME NOT NULL,
    "notAfter" DATETIME NOT NULL,
    "der" BLOB NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "csrHash" TEXT,
    "tokenId" TEXT,
    "predecessorSerial" TEXT,
    "status" TEXT NOT NULL DEFAULT 'good',
    "revokedAt" DATETIME,
    "revocationReason" TEXT,
    "invalidityDate" DATETIME,
    "statusChangedAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Certificate_caId_fkey" FOREIGN KEY ("caId") REFERENCES "CertificateAuthority" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "Crl" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "caId" TEXT NOT NULL,
    "number" BIGINT NOT NULL,
    "thisUpdate" DATETIME NOT NULL,
    "nextUpdate" DATETIME NOT NULL,
    "der" BLOB NOT NULL,
    "entries" INTEGER NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Crl_caId_fkey" FOREIGN KEY ("caId") REFERENCES "CertificateAuthority" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "OcspResponder" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "caId" TEXT NOT NULL,
    "certificateDer" BLOB NOT NULL,
    "keyId" TEXT NOT NULL,
    "notBefore" DATETIME NOT NULL,
    "notAfter" DATETIME NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "ApiToken" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "secretHash" TEXT NOT NULL,
    "scopes" TEXT NOT NULL,
    "profiles" TEXT,
    "nameSuffixes" TEXT,
    "expiresAt" DATETIME,
    "revokedAt" DATETIME,
    "lastUsedAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "AuditEvent" (
    "seq" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "time" DATETIME NOT NULL,
    "actor" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "target" TEXT,
    "outcome" TEXT NOT NULL,
    "sourceIp" TEXT,
    "details" TEXT,
    "prevHash" TEXT NOT NULL,
    "hash" TEXT NOT NULL
);

-- CreateTable
CREATE TABLE "Setting" (
    "key" TEXT NOT NULL PRIMARY KEY,
    "value" TEXT NOT NULL
);

-- CreateIndex
CREATE UNIQUE INDEX "CertificateAuthority_fingerprint_key" ON "CertificateAuthority"("fingerprint");

-- CreateIndex
CREATE UNIQUE INDEX "Certificate_fingerprint_key" ON "Certificate"("fingerprint");

-- CreateIndex
CREATE INDEX "Certificate_statusChangedAt_idx" ON "Certificate"("statusChangedAt");

-- CreateIndex
CREATE INDEX "Certificate_caId_status_idx" ON "Certificate"("caId", "status");

-- CreateIndex
CREATE INDEX "Certificate_notAfter_idx" ON "Certificate"("notAfter");

-- CreateIndex
CREATE INDEX "Certificate_profile_createdAt_idx" ON "Certificate"("profile", "createdAt");

-- CreateIndex
CREATE INDEX "Certificate_createdAt_serial_idx" ON "Certificate"("createdAt", "serial");

-- CreateIndex
CREATE INDEX "Certificate_predecessorSerial_idx" ON "Certificate"("predecessorSerial");

-- CreateIndex
CREATE UNIQUE INDEX "Crl_caId_number_key" ON "Crl"("caId", "number");

-- CreateIndex
CREATE INDEX "OcspResponder_caId_notAfter_idx" ON "OcspResponder"("caId", "notAfter");

-- CreateIndex
CREATE UNIQUE INDEX "ApiToken_secretHash_key" ON "ApiToken"("secretHash");

-- CreateIndex
CREATE UNIQUE INDEX "AuditEvent_hash_key" ON "AuditEvent"("hash");

-- CreateIndex
CREATE INDEX "AuditEvent_action_idx" ON "AuditEvent"("action");

-- CreateIndex
CREATE INDEX "AuditEvent_time_idx" ON "AuditEvent"("time");

