-- CreateTable
CREATE TABLE "AcmeAccount" (
    "id" TEXT NOT NULL,
    "thumbprint" TEXT NOT NULL,
    "jwk" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "contact" TEXT NOT NULL DEFAULT '[]',
    "profile" TEXT NOT NULL,
    "eabKeyId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AcmeAccount_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AcmeOrder" (
    "id" TEXT NOT NULL,
    "accountId" TEXT NOT NULL,
    "profile" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "expires" TIMESTAMP(3) NOT NULL,
    "identifiers" TEXT NOT NULL,
    "authorizations" TEXT NOT NULL,
    "notBefore" TIMESTAMP(3),
    "notAfter" TIMESTAMP(3),
    "error" TEXT,
    "certificateSerial" TEXT,
    "replaces" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AcmeOrder_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AcmeAuthorization" (
    "id" TEXT NOT NULL,
    "accountId" TEXT NOT NULL,
    "identifierType" TEXT NOT NULL,
    "identifierValue" TEXT NOT NULL,
    "wildcard" BOOLEAN NOT NULL DEFAULT false,
    "status" TEXT NOT NULL,
    "expires" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AcmeAuthorization_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AcmeChallenge" (
    "id" TEXT NOT NULL,
    "authorizationId" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "token" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "validated" TIMESTAMP(3),
    "error" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AcmeChallenge_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AcmeNonce" (
    "value" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "AcmeNonce_pkey" PRIMARY KEY ("value")
);

-- CreateTable
CREATE TABLE "AcmeEabKey" (
    "id" TEXT NOT NULL,
    "sealed" BYTEA NOT NULL,
    "kekId" TEXT NOT NULL,
    "profile" TEXT,
    "boundAccountId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AcmeEabKey_pkey" PRIMARY KEY ("id")
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

-- AddForeignKey
ALTER TABLE "AcmeChallenge" ADD CONSTRAINT "AcmeChallenge_authorizationId_fkey" FOREIGN KEY ("authorizationId") REFERENCES "AcmeAuthorization"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

