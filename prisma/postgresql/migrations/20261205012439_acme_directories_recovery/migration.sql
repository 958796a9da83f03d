-- DropIndex
DROP INDEX "AcmeAccount_thumbprint_key";

-- AlterTable
ALTER TABLE "AcmeOrder" ADD COLUMN     "csrHash" TEXT,
ADD COLUMN     "processingSince" TIMESTAMP(3);

-- AlterTable
ALTER TABLE "AcmeChallenge" ADD COLUMN     "processingSince" TIMESTAMP(3);

-- CreateIndex
CREATE UNIQUE INDEX "AcmeAccount_profile_thumbprint_key" ON "AcmeAccount"("profile", "thumbprint");

-- CreateIndex
CREATE INDEX "AcmeOrder_status_processingSince_idx" ON "AcmeOrder"("status", "processingSince");

-- CreateIndex
CREATE INDEX "AcmeChallenge_status_processingSince_idx" ON "AcmeChallenge"("status", "processingSince");

