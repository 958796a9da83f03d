-- AlterTable
ALTER TABLE "AcmeAccount" ADD COLUMN     "sourceKey" TEXT;

-- AlterTable
ALTER TABLE "AcmeOrder" ADD COLUMN     "sourceKey" TEXT;

-- CreateIndex
CREATE INDEX "AcmeAccount_sourceKey_createdAt_idx" ON "AcmeAccount"("sourceKey", "createdAt");

-- CreateIndex
CREATE INDEX "AcmeOrder_sourceKey_createdAt_idx" ON "AcmeOrder"("sourceKey", "createdAt");

-- CreateIndex
CREATE INDEX "AcmeOrder_expires_idx" ON "AcmeOrder"("expires");

-- CreateIndex
CREATE INDEX "AcmeAuthorization_expires_idx" ON "AcmeAuthorization"("expires");

