-- CreateTable
CREATE TABLE "AcmeAccount" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "thumbprint" TEXT NOT NULL,
    "jwk" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "contact" TEXT NOT NULL DEFAULT '[]',
    "profile" TEXT NOT NULL,
    "eabKeyId" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "AcmeOrder" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "accountId" TEXT NOT NULL,
    "profile" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "expires" DATETIME NOT NULL,
    "identifiers" TEXT NOT NULL,
    "authorizations" TEXT NOT NULL,
    "notBefore" DATETIME,
    "notAfter" DATETIME,
    "error" TEXT,
    "certificateSerial" TEXT,
    "replaces" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "AcmeAuthorization" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "accountId" TEXT NOT NULL,
    "identifierType" TEXT NOT NULL,
    "identifierValue" TEXT NOT NULL,
    "wildcard" BOOLEAN NOT NULL DEFAULT false,
    "status" TEXT NOT NULL,
    "expires" DATETIME NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "AcmeChallenge" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "authorizationId" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "token" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "validated" DATETIME,
    "error" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "AcmeChallenge_authorizationId_fkey" FOREIGN KEY ("authorizationId") REFERENCES "AcmeAuthorization" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "AcmeNonce" (
    "value" TEXT NOT NULL PRIMARY KEY,
    "expiresAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "AcmeEabKey" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "sealed" BLOB NOT NULL,
    "kekId" TEXT NOT NULL,
    "profile" TEXT,
    "boundAccountId" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateIndex
CREATE UNIQUE INDEX "AcmeAccount_thumbprint_key" ON "AcmeAccount"("thumbprint");

-- CreateIndex
CREATE INDEX "AcmeOrder_accountId_createdAt_idx" ON "AcmeOrder"("accountId", "createdAt");

-- CreateIndex
CREATE INDEX "AcmeOrder_certificateSerial_idx" ON "AcmeOrder"("certificateSerial");

-- CreateIndex
CREATE INDEX "AcmeAuthorization_accountId_status_idx" ON "AcmeAuthorization"("accountId", "status");

-- CreateIndex
CREATE INDEX "AcmeChallenge_authorizationId_idx" ON "AcmeChallenge"("authorizationId");

-- CreateIndex
CREATE INDEX "AcmeNonce_expiresAt_idx" ON "AcmeNonce"("expiresAt");

