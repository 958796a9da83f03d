-- CreateTable
CREATE TABLE "ExpiryAlert" (
    "id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "caId" TEXT NOT NULL,
    "profile" TEXT,
    "notAfter" TIMESTAMP(3) NOT NULL,
    "reportedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "ExpiryAlert_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "ExpiryAlert_notAfter_idx" ON "ExpiryAlert"("notAfter");

-- CreateIndex
CREATE INDEX "Certificate_profile_status_notAfter_idx" ON "Certificate"("profile", "status", "notAfter");

-- CreateIndex
CREATE INDEX "Certificate_status_notAfter_idx" ON "Certificate"("status", "notAfter");

-- CreateIndex
CREATE INDEX "AcmeOrder_replaces_idx" ON "AcmeOrder"("replaces");

