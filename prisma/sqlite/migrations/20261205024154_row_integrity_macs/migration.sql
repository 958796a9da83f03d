-- AlterTable
ALTER TABLE "ApiToken" ADD COLUMN "grantMac" TEXT;

-- AlterTable
ALTER TABLE "AcmeAccount" ADD COLUMN "mac" TEXT;

-- AlterTable
ALTER TABLE "AcmeAuthorization" ADD COLUMN "mac" TEXT;

