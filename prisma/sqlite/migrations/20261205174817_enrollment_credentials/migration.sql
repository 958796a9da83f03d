-- CreateTable
CREATE TABLE "EnrollmentCredential" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "protocol" TEXT NOT NULL,
    "profile" TEXT NOT NULL,
    "nameSuffixes" TEXT,
    "usesAllowed" INTEGER NOT NULL,
    "usesSpent" INTEGER NOT NULL DEFAULT 0,
    "expiresAt" DATETIME,
    "secretHash" TEXT NOT NULL,
    "grantMac" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "createdBy" TEXT NOT NULL,
    "revokedAt" DATETIME,
    "lastUsedAt" DATETIME
);

-- CreateIndex
CREATE UNIQUE INDEX "EnrollmentCredential_secretHash_key" ON "EnrollmentCredential"("secretHash");

