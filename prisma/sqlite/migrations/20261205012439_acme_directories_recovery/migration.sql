-- DropIndex
DROP INDEX "AcmeAccount_thumbprint_key";

-- AlterTable
ALTER TABLE "AcmeOrder" ADD COLUMN "csrHash" TEXT;
ALTER TABLE "AcmeOrder" ADD COLUMN "processingSince" DATETIME;

-- AlterTable
ALTER TABLE "AcmeChallenge" ADD COLUMN "processingSince" DATETIME;

-- CreateIndex
CREATE UNIQUE INDEX "AcmeAccount_profile_thumbprint_key" ON "AcmeAccount"("profile", "thumbprint");

-- CreateIndex
CREATE INDEX "AcmeOrder_status_processingSince_idx" ON "AcmeOrder"("status", "processingSince");

-- CreateIndex
CREATE INDEX "AcmeChallenge_status_processingSince_idx" ON "AcmeChallenge"("status", "processingSince");

