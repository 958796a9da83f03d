-- CreateTable
CREATE TABLE "EnrollmentCredential" (
    "id" TEXT NOT NULL,
    "protocol" TEXT NOT NULL,
    "profile" TEXT NOT NULL,
    "nameSuffixes" TEXT,
    "usesAllowed" INTEGER NOT NULL,
    "usesSpent" INTEGER NOT NULL DEFAULT 0,
    "expiresAt" TIMESTAMP(3),
    "secretHash" TEXT NOT NULL,
    "grantMac" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "createdBy" TEXT NOT NULL,
    "revokedAt" TIMESTAMP(3),
    "lastUsedAt" TIMESTAMP(3),

    CONSTRAINT "EnrollmentCredential_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "EnrollmentCredential_secretHash_key" ON "EnrollmentCredential"("secretHash");

